// Typed shape checkers for data brnet reads back (the state file today): each checker returns
// the value with exactly the declared fields, typed, or throws ShapeError naming the path.
//
// Hand-written instead of zod, for a measured reason: the state file of a loaded host (200
// networks, 1,000 endpoints, 1,000 ports; 760 KB) is validated on every call, in a process
// whose code is cold. In the compiled executable zod/mini took about ten times as long as
// these checkers for it (zod's generated-code path and its jitless one alike), more than a
// whole call on an empty host. The speed comes from plain closures and from building the
// error path only on failure.

export class ShapeError extends Error {
  readonly path: (string | number)[] = [];
  constructor(readonly problem: string) {
    super(); // no own `message`: the getter below builds it from the path, which grows while the error unwinds
  }
  /** "networks.3.icc: expected a boolean" */
  override get message(): string {
    return `${this.path.length ? this.path.join('.') : '(top level)'}: ${this.problem}`;
  }
}

export type Shape<T> = (value: unknown) => T;
/** An enum, which also lists its values (for help texts and completion). */
export type OneOf<T extends readonly string[]> = Shape<T[number]> & { readonly options: T };
export type Infer<S> = S extends Shape<infer T> ? T : never;

const at = <T>(key: string | number, check: () => T): T => {
  try {
    return check();
  } catch (e) {
    if (e instanceof ShapeError) e.path.unshift(key);
    throw e;
  }
};

const kind = (v: unknown) => (v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v);

function primitive<T>(name: string, test: (v: unknown) => boolean): Shape<T> {
  return (v) => {
    if (!test(v)) throw new ShapeError(`expected ${name}, got ${kind(v)}`);
    return v as T;
  };
}

export const string = primitive<string>('a string', (v) => typeof v === 'string');
export const number = primitive<number>('a number', (v) => typeof v === 'number' && Number.isFinite(v));
export const boolean = primitive<boolean>('a boolean', (v) => typeof v === 'boolean');

export function literal<const T extends string | number>(want: T): Shape<T> {
  return (v) => {
    if (v !== want) throw new ShapeError(`expected ${JSON.stringify(want)}, got ${JSON.stringify(v) ?? kind(v)}`);
    return want;
  };
}

export function oneOf<const T extends readonly string[]>(options: T): OneOf<T> {
  const check = (v: unknown) => {
    if (typeof v !== 'string' || !options.includes(v)) {
      throw new ShapeError(`expected one of ${options.join(', ')}, got ${JSON.stringify(v) ?? kind(v)}`);
    }
    return v as T[number];
  };
  return Object.assign(check, { options });
}

export function nullable<T>(inner: Shape<T>): Shape<T | null> {
  return (v) => (v === null ? null : inner(v));
}

export function array<T>(item: Shape<T>): Shape<T[]> {
  return (v) => {
    if (!Array.isArray(v)) throw new ShapeError(`expected an array, got ${kind(v)}`);
    const out = new Array<T>(v.length);
    let i = 0;
    try {
      for (; i < v.length; i++) out[i] = item(v[i]);
    } catch (e) {
      if (e instanceof ShapeError) e.path.unshift(i);
      throw e;
    }
    return out;
  };
}

const isPlainObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** A string-keyed map (labels, options); prototype keys are refused, not merged. */
export function record<T>(value: Shape<T>): Shape<Record<string, T>> {
  return (v) => {
    if (!isPlainObject(v)) throw new ShapeError(`expected an object, got ${kind(v)}`);
    const out: Record<string, T> = {};
    for (const k of Object.keys(v)) {
      // JSON.parse makes "__proto__" an own key; assigning it would replace out's prototype.
      if (k === '__proto__') throw new ShapeError('a key named __proto__');
      out[k] = at(k, () => value(v[k]));
    }
    return out;
  };
}

/** A string-keyed map whose keys are checked too (`what` says what a key must be). */
export function keyedRecord<T>(what: string, test: (k: string) => boolean, value: Shape<T>): Shape<Record<string, T>> {
  const values = record(value);
  return (v) => {
    const out = values(v);
    for (const k of Object.keys(out)) if (!test(k)) throw new ShapeError(`expected keys that are ${what}, got ${clip(JSON.stringify(k))}`);
    return out;
  };
}

/** An object with exactly these fields (others are dropped, as the writer never makes them). */
export function object<S extends Record<string, Shape<unknown>>>(shape: S): Shape<{ [K in keyof S]: Infer<S[K]> }> {
  const keys = Object.keys(shape);
  return (v) => {
    if (!isPlainObject(v)) throw new ShapeError(`expected an object, got ${kind(v)}`);
    const out: Record<string, unknown> = {};
    let k = '';
    try {
      for (k of keys) out[k] = shape[k]!(v[k]);
    } catch (e) {
      if (e instanceof ShapeError) e.path.unshift(k);
      throw e;
    }
    return out as { [K in keyof S]: Infer<S[K]> };
  };
}

/** A string that `test` accepts: what it is, said in the error ("an interface name"). */
const clip = (s: string) => (s.length > 48 ? `${s.slice(0, 45)}…"` : s);

export function text(what: string, test: (s: string) => boolean): Shape<string> {
  return (v) => {
    if (typeof v !== 'string') throw new ShapeError(`expected ${what}, got ${kind(v)}`);
    // Quoted (control characters escaped) and cut short: enough to find the value, not a dump.
    if (!test(v)) throw new ShapeError(`expected ${what}, got ${clip(JSON.stringify(v))}`);
    return v;
  };
}

/** A whole number from min to max. */
export function int(min: number, max: number): Shape<number> {
  return (v) => {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
      throw new ShapeError(`expected a whole number from ${min} to ${max}, got ${JSON.stringify(v) ?? kind(v)}`);
    }
    return v;
  };
}

/** What `refine` reports: where, below the value, and what is wrong there. */
export interface Problem {
  path: (string | number)[];
  problem: string;
}

/**
 * A shape with a rule across its fields (a reference from one part to another), checked once
 * the fields themselves are.
 */
export function refine<T>(inner: Shape<T>, check: (value: T) => Problem | null): Shape<T> {
  return (v) => {
    const out = inner(v);
    const p = check(out);
    if (p) {
      const e = new ShapeError(p.problem);
      e.path.push(...p.path);
      throw e;
    }
    return out;
  };
}

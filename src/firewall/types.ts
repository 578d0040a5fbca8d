// What the firewall backends report to `check` and `restore`.

export interface FirewallDrift {
  kind: 'missing' | 'wrong' | 'leftover' | 'foreign';
  what: string;
}

/** An object of another brnet instance, and its id. */
export interface Foreign {
  what: string;
  instance: string;
}

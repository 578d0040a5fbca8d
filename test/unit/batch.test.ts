import { describe, expect, it } from 'vitest';
import { parseBatch, splitWords } from '../../src/core/batch.ts';

describe('batch parsing', () => {
  it.each([
    ['network create web', ['network', 'create', 'web']],
    ['  network   create  web  ', ['network', 'create', 'web']],
    [`network create web --label 'team=ops east'`, ['network', 'create', 'web', '--label', 'team=ops east']],
    [`network create web --label "a \\"b\\""`, ['network', 'create', 'web', '--label', 'a "b"']],
    ['network create a\\ b', ['network', 'create', 'a b']],
    [`x '' y`, ['x', '', 'y']],
    ['x $(rm -rf /) `id` ; ls', ['x', '$(rm', '-rf', '/)', '`id`', ';', 'ls']],
  ])('splits %j without a shell', (line, words) => {
    expect(splitWords(line, 1)).toEqual(words);
  });

  it('skips blanks and comments, strips a leading brnet, numbers lines', () => {
    const lines = parseBatch('# setup\n\nnetwork create a\n  brnet network create b\n');
    expect(lines).toEqual([
      { lineNo: 3, argv: ['network', 'create', 'a'] },
      { lineNo: 4, argv: ['network', 'create', 'b'] },
    ]);
  });

  it('refuses nesting and unterminated quotes with the line number', () => {
    expect(() => parseBatch('network ls\nbatch other')).toThrow(/line 2: `batch` cannot run inside a batch/);
    expect(() => parseBatch("network create 'a")).toThrow(/line 1: unterminated ' quote/);
  });
});

describe('a file that is no batch', () => {
  it('is refused without repeating its words: it may be a secret passed by mistake', () => {
    const secret = 'root:$6$Zq8yd1Uq$hashhashhash:19000:0:99999:7:::';
    let message = '';
    try {
      parseBatch(`network create ok\n${secret}\n`);
    } catch (e) {
      message = (e as Error).message;
    }
    expect(message).toBe('line 2: not a brnet command (each line of a batch is one, such as: network create NAME)');
    expect(message).not.toContain('hash');
    for (const text of ['-----BEGIN OPENSSH PRIVATE KEY-----', 'password=hunter2', "'unterminated"]) {
      let m = '';
      try {
        parseBatch(text);
      } catch (e) {
        m = (e as Error).message;
      }
      expect(m).toMatch(/^line 1: /);
      expect(m).not.toMatch(/OPENSSH|hunter2|unterminated'/);
    }
  });
});

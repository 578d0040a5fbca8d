import type { Reporter, SerializedError, TestModule } from 'vitest/node';

/**
 * Prints two machine-readable lines at the very end of a run:
 *
 *   system tests: N passed, N skipped
 *   N passed, N failed, N skipped
 *
 * Failures that are not attached to a test (a module that failed to load, a
 * failing beforeAll/afterAll hook whose tests were then skipped, unhandled
 * errors) are counted as failures so that they can never hide.
 */
export default class SummaryReporter implements Reporter {
  onTestRunEnd(
    testModules: ReadonlyArray<TestModule>,
    unhandledErrors: ReadonlyArray<SerializedError>,
  ): void {
    let passed = 0;
    let failed = 0;
    let skipped = 0;
    let systemPassed = 0;
    let systemSkipped = 0;

    for (const mod of testModules) {
      const isSystem = isSystemModule(mod);
      let modFailed = 0;
      for (const test of mod.children.allTests()) {
        const state = test.result().state;
        if (state === 'passed') {
          passed++;
          if (isSystem) systemPassed++;
        } else if (state === 'failed') {
          failed++;
          modFailed++;
        } else {
          // 'skipped', or 'pending' (never finished: run interrupted).
          skipped++;
          if (isSystem) systemSkipped++;
        }
      }
      // A module with zero tests that failed (import/syntax error), or a module
      // whose only failure is in a hook (tests end up skipped/passed), still
      // counts as one failure.
      if (mod.state() === 'failed' && modFailed === 0) failed++;
    }
    failed += unhandledErrors.length;

    process.stdout.write(
      `system tests: ${systemPassed} passed, ${systemSkipped} skipped\n` +
        `${passed} passed, ${failed} failed, ${skipped} skipped\n`,
    );
  }
}

function isSystemModule(mod: TestModule): boolean {
  const rel = mod.relativeModuleId.replace(/\\/g, '/').replace(/^\.\//, '');
  if (rel.startsWith('test/system/')) return true;
  return mod.moduleId.replace(/\\/g, '/').includes('/test/system/');
}

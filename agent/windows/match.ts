// Glob matching for `match: {device, metric}` (SPEC.md section 2): `*` any run of characters, `?` one.
// Written here instead of using picomatch: device and metric ids are not paths, and picomatch's path
// semantics (`*` stops at `/`, leading dots are hidden, braces/extglobs) would surprise users whose
// topic-derived ids contain `/` or start with `.`. Ten lines, no dependency, anchored, no backtracking blowup
// beyond what `.*` gives.

const SPECIAL = /[\\^$.|+()[\]{}]/g;

export function compileGlob(glob: string | undefined): (s: string) => boolean {
  if (glob === undefined || glob === '*') return () => true;
  if (!/[*?]/.test(glob)) return (s) => s === glob;
  const source = glob.replace(SPECIAL, '\\$&').replace(/\*+/g, '.*').replace(/\?/g, '.');
  const re = new RegExp(`^${source}$`, 's');
  return (s) => re.test(s);
}

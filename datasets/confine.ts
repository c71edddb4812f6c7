/**
 * Data root confinement: an image of a data set is read only when its real path (symlinks
 * resolved) lies inside the split's images folder or inside a root the caller trusts explicitly
 * (a campaign's transfer-set source, whose images a converted set links to; `data check
 * --allow-root`). A `file_name` with `..` or an absolute path is refused by the schema
 * (coco-schema.ts unsafeFileName) before any path is built; this module catches symlinks that lead
 * out, e.g. `train/a.png -> /etc/shadow`, without ever opening the target.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

export type ConfinedPath = { path: string; real: string } | { problem: 'missing' | 'outside'; path: string; message: string };

function inside(real: string, root: string): boolean {
  return real === root || real.startsWith(root.endsWith(path.sep) ? root : root + path.sep);
}

/** Resolves the roots once (a root that does not exist is dropped: nothing can lie inside it). */
export class DataRoots {
  private readonly roots: string[];
  constructor(
    readonly imagesDir: string,
    allowedRoots: readonly string[] = [],
  ) {
    this.roots = [imagesDir, ...allowedRoots].flatMap((r) => {
      try {
        return [fs.realpathSync(r)];
      } catch {
        return [];
      }
    });
  }

  private verdict(p: string, real: string | undefined, err?: unknown): ConfinedPath {
    if (real === undefined) {
      const code = (err as NodeJS.ErrnoException).code;
      // ENOENT: missing, or a dangling symlink; either way nothing to read
      return { problem: 'missing', path: p, message: `${p}: ${code === 'ENOENT' ? 'missing' : `unresolvable (${code ?? (err as Error).message})`}` };
    }
    if (this.roots.some((r) => inside(real, r))) return { path: p, real };
    return {
      problem: 'outside',
      path: p,
      message: `${p} resolves to ${real}, outside the data root ${this.roots[0] ?? this.imagesDir} (not read; a folder you trust can be allowed with --allow-root)`,
    };
  }

  /** The image's path when it may be read, else why not. Never opens the file. */
  resolve(fileName: string): ConfinedPath {
    const p = path.join(this.imagesDir, fileName);
    try {
      return this.verdict(p, fs.realpathSync(p));
    } catch (e) {
      return this.verdict(p, undefined, e);
    }
  }

  async resolveAsync(fileName: string): Promise<ConfinedPath> {
    const p = path.join(this.imagesDir, fileName);
    try {
      return this.verdict(p, await fs.promises.realpath(p));
    } catch (e) {
      return this.verdict(p, undefined, e);
    }
  }
}

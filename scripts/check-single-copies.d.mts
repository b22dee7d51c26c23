/** Types of scripts/check-single-copies.mjs for its spec. */
export interface InstalledCopy {
  folder: string;
  version: string;
}
export declare function installedCopies(root: string, scope?: string): Map<string, InstalledCopy[]>;
export declare function duplicates(copies: Map<string, InstalledCopy[]>): [string, InstalledCopy[]][];

// Aligned plain-text tables for the command-line tools.

export type Align = "left" | "right";

/**
 * Renders rows under a header, columns separated by two spaces, each column as wide as its
 * widest cell; trailing spaces are trimmed.
 */
export function formatTable(header: string[], rows: string[][], align: Align[] = []): string {
    const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
    const line = (cells: string[]) =>
        cells
            .map((c, i) => ((align[i] ?? "left") === "right" ? c.padStart(widths[i]) : c.padEnd(widths[i])))
            .join("  ")
            .trimEnd();
    return [line(header), ...rows.map(line)].join("\n");
}

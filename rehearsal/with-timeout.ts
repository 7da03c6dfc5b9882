// The rehearsal's bound on a promise that has none of its own (pulumi up, a Kafka client call).

/**
 * Resolves or rejects as `p` does, or rejects with "<what>: no result within <ms/1000> s" after
 * `ms`. `p` itself goes on (nothing cancels it); the timer is cleared when it settles.
 */
export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
    let timer: NodeJS.Timeout;
    return Promise.race([
        p.finally(() => clearTimeout(timer)),
        new Promise<T>((_, reject) => {
            timer = setTimeout(() => reject(new Error(`${what}: no result within ${ms / 1000} s`)), ms);
        }),
    ]);
}

// The rehearsal's display: a live status line on a terminal, plain lines otherwise.

export class Display {
    private status = "";
    private timer?: NodeJS.Timeout;
    constructor(
        private readonly live: boolean,
        private readonly statusFn: () => string,
    ) {}
    start() {
        if (!this.live) return;
        this.timer = setInterval(() => this.draw(), 500);
        this.timer.unref();
    }
    stop() {
        if (this.timer) clearInterval(this.timer);
        this.clear();
    }
    line(s: string) {
        this.clear();
        process.stderr.write(`${s}\n`);
        this.draw();
    }
    private clear() {
        if (this.live && this.status) process.stderr.write("\r\x1b[2K");
        this.status = "";
    }
    private draw() {
        if (!this.live) return;
        this.status = this.statusFn().slice(0, (process.stderr.columns ?? 120) - 1);
        process.stderr.write(`\r\x1b[2K${this.status}`);
    }
}

import Foundation
import VAECore

/// A live progress line for the current epoch (steps, rate, ETA), drawn only when standard output is a
/// terminal; piped output gets just the plain per-epoch lines. Redraws at most ten times a second.
final class ProgressBar {
    let enabled = isatty(STDOUT_FILENO) == 1
    private var lastDraw = Date.distantPast
    private var epochStart = Date()
    private var epochShown = -1
    private var drawn = false

    /// Called before each step.
    func update(_ trainer: Trainer) {
        guard enabled else { return }
        let done = trainer.step - trainer.epoch * trainer.stepsPerEpoch
        if trainer.epoch != epochShown { epochShown = trainer.epoch; epochStart = Date() }
        let now = Date()
        guard now.timeIntervalSince(lastDraw) >= 0.1 else { return }
        lastDraw = now
        let total = max(1, trainer.stepsPerEpoch)
        let elapsed = now.timeIntervalSince(epochStart)
        let rate = done > 0 ? Double(done) / max(elapsed, 1e-9) : 0
        let eta = rate > 0 ? Double(total - done) / rate : 0
        let width = 24, filled = width * done / total
        let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
        let line = String(format: "\r\u{1B}[Kepoch %d/%d [%@] %d/%d steps  %.0f steps/s  ETA %.1f s",
                          trainer.epoch + 1, trainer.epochs, bar, done, total, rate, eta)
        FileHandle.standardOutput.write(Data(line.utf8))
        drawn = true
    }

    /// Clears the live line before a permanent line is printed.
    func clear() {
        guard enabled, drawn else { return }
        FileHandle.standardOutput.write(Data("\r\u{1B}[K".utf8))
        drawn = false
    }
}

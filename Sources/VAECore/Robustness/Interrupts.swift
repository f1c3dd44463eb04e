#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// Ctrl-C during training: the first SIGINT only raises a flag that the training loop polls between
/// steps (it then finishes the step, writes the checkpoint and exits 130); a second SIGINT exits at
/// once with status 130. The handler does nothing but an atomic add and, the second time, a short
/// `write(2)` and `_exit(2)`, all async-signal-safe: no Foundation, no allocation, no locks.
public enum Interrupts {
    /// Number of SIGINTs received since `install()`.
    private static let count = Atomic<Int>(0)

    /// The message for the second Ctrl-C, allocated before the handler can run.
    nonisolated(unsafe) private static var immediateMessage: UnsafeMutableBufferPointer<CChar>?

    /// Installs the handler (idempotent). Call before training starts.
    public static func install() {
        if immediateMessage == nil {
            let text = Array("\ninterrupted again: exiting at once (the last checkpoint written is intact)\n".utf8CString)
            let buffer = UnsafeMutableBufferPointer<CChar>.allocate(capacity: text.count)
            _ = buffer.initialize(from: text)
            immediateMessage = buffer
        }
        count.store(0, ordering: .sequentiallyConsistent)
        signal(SIGINT) { _ in
            let previous = Interrupts.count.add(1, ordering: .sequentiallyConsistent).oldValue
            if previous >= 1 {
                if let message = Interrupts.immediateMessage {
                    _ = write(2, message.baseAddress, message.count - 1)
                }
                _exit(130)
            }
        }
    }

    /// Whether a Ctrl-C has arrived (polled by the training loop between steps).
    public static var requested: Bool { count.load(ordering: .sequentiallyConsistent) > 0 }

    /// Restores the default disposition (Ctrl-C kills the process again).
    public static func uninstall() { signal(SIGINT, SIG_DFL) }
}

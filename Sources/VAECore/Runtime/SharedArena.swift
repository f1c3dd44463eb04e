import Synchronization

/// The memory the kernel programs keep their intermediates in, shared by every executable of the process.
///
/// An intermediate lives only while its `run()` runs (outputs are pinned per executable), so executables
/// that do not run at the same time — the trainer's step and its evaluator — can use the same arena: the
/// process holds one arena the size of the largest plan instead of one per executable. A run takes the
/// arena, growing it if its plan needs more, and gives it back when it ends; a run on another thread
/// while the arena is taken uses a private arena of its executable instead, so nothing waits.
final class SharedArena: @unchecked Sendable {
    static let shared = SharedArena()

    private let taken = Atomic<Bool>(false)
    private var base: UnsafeMutablePointer<Float>?
    private var capacity = 0

    /// The arena with room for `count` floats, or nil when another run holds it. Growing replaces the
    /// memory (an executable notices the new address and rebinds its kernels).
    func acquire(_ count: Int) -> UnsafeMutablePointer<Float>? {
        guard taken.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else { return nil }
        if capacity < count || base == nil {
            base?.deallocate()
            capacity = max(count, 16)
            base = LargePages.zeroed(floats: capacity)
        }
        return base
    }

    func release() { taken.store(false, ordering: .releasing) }
}

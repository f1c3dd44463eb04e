#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Memory for the step's large buffers (the arena, the pinned outputs with the gradients, the parameters
/// and Adam's moments), on 2 MiB pages where the kernel gives them.
///
/// Why: a step streams ~15 MB (Adam's seven arrays of 2.6 MB, the big products' operands, the
/// gradients), far more than the 4 KiB pages the dTLB covers. Linux backs anonymous memory with 2 MiB
/// pages only when asked (`transparent_hugepage/enabled` is `madvise` on the development machines), so
/// a buffer of at least `threshold` bytes starts on a 2 MiB boundary and its whole 2 MiB pages are marked
/// `MADV_HUGEPAGE` before they are first touched. The values never change, only the pages under them.
///
/// Measured on the mnist step (interleaved 1,000-step benches, three binaries in rotation): medians
/// 1.88 → 1.87 ms over 7 rounds; stage minima dy·W₄ ‖ Σ dy⊗h 726–730 → 722–728 µs, Σ dh⊗x 162–166 →
/// 159–160 µs. Small, and free: the checkpoint of `vaec run samples/mnist.vae` is byte-identical and
/// its peak memory did not grow (51.8 → 52.1 MiB).
///
/// Only whole pages inside the buffer: a first version rounded every buffer of 256 KiB or more up to
/// whole 2 MiB pages (W₁'s and W₄'s 1.25 MB each, the GEMM packing buffers), and since a 2 MiB page is
/// committed whole, the run's peak memory rose from 51 to 63 MiB (the limit is 64); rounding only
/// buffers of 2 MiB or more still took it to 58 MiB. The parameters are kept in one block per
/// `ParameterStore` so that the 2.6 MB of the mnist model reach the threshold together.
enum LargePages {
    static let pageBytes = 2 << 20
    /// Smaller buffers take the usual allocator (64-byte aligned).
    static let threshold = 2 << 20

    /// `count` floats (at least 16) set to +0, 64-byte aligned; free them with `deallocate()`.
    static func zeroed(floats count: Int) -> UnsafeMutablePointer<Float> {
        let count = max(count, 16)
        let bytes = count * MemoryLayout<Float>.stride
        var raw: UnsafeMutableRawPointer?
        #if canImport(Glibc)   // MADV_HUGEPAGE is Linux's; elsewhere every buffer takes the usual allocator
        if bytes >= threshold, posix_memalign(&raw, pageBytes, bytes) == 0, let pages = raw {
            // The whole pages only: the tail stays on small pages, so nothing is committed beyond the buffer.
            // Marked before the zeroing below first touches them.
            _ = madvise(pages, bytes / pageBytes * pageBytes, MADV_HUGEPAGE)
        } else {
            raw = nil
        }
        #endif
        let memory = raw ?? UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
        return memory.initializeMemory(as: Float.self, repeating: 0, count: count)
    }
}

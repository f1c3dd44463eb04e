// Single-precision GEMM for the runtime, BLIS/GotoBLAS style.
//
//   C[m×n] = alpha · op(A) · op(B) + beta · C        (all matrices row-major)
//
// Structure (per thread, over the thread's own rectangle of C):
//
//   for jc in n-blocks of ncBlock:                      B block  (kc × nc)  lives in L2
//     for pc in k-blocks of kc (balanced, ≤ kcMax):
//       pack B[pc.., jc..] into panels of nr columns
//       for ic in m-blocks of mcBlock:
//         pack A[ic.., pc..] into panels of mr rows      A micro-panel (mr × kc) lives in L1
//         for each A micro-panel (mr rows):
//           for each B micro-panel (nr columns):
//             micro-kernel: mr×nr tile accumulated in SIMD16 registers (GEMMKernel.swift)
//
// The packing routines (GEMMPacking.swift) read A and B through whichever transpose is asked for,
// so no transposed copy of A or B is ever materialised: the packed layout is the same for all four
// transpose combinations.
//
// Determinism. Every element C[i, j] is produced by the same sequence of floating-point operations
// whatever the thread count and whatever tile (full or edge) it falls in:
//   * the k-blocking depends only on k (never on threads, m or n);
//   * inside a k-block the accumulator starts at 0 and takes one fused multiply-add per p, in order;
//   * after a k-block: C = alpha·acc + beta·C for the first block (alpha·acc when beta == 0, in which
//     case C is never read), and C = C + alpha·acc for the later blocks;
//   * edge tiles go through the same kernel into a scratch tile and then the same scalar formula.
// Threads split only the OUTPUT (disjoint column or row ranges of C), never k. So results are
// bit-identical between threads = 1 and threads = 2, and from call to call.

import Dispatch
import Synchronization

/// C[m×n] = alpha · op(A) · op(B) + beta · C, row-major. op(A) is A (m×k, leading dimension lda) or,
/// when transposeA, Aᵀ where A is stored k×m. Likewise B: k×n, or stored n×k when transposeB.
/// beta == 0 means C is overwritten (never read, so NaN garbage in C does not propagate).
public enum GEMM {
    // MARK: Blocking parameters (measured on Zen 4 with AVX-512; see the bench notes in the report).

    /// Rows of a micro-tile (broadcast operand, A).
    static let mr = 8
    /// Columns of a micro-tile (vector operand, B): two SIMD16<Float> registers.
    static let nr = 32
    /// Largest k-block. The actual block is balanced: k is cut into ceil(k / kcMax) equal-ish parts.
    static let kcMax = 384
    /// Rows of A packed at once (a multiple of mr).
    static let mcBlock = 192
    /// Columns of B packed at once (a multiple of nr).
    static let ncBlock = 512
    /// Below this many flops (2·m·n·k) a call runs on one thread whatever `threads` says:
    /// the fork/join of concurrentPerform (~10–20 µs) and the duplicated packing don't pay.
    static let parallelFlopThreshold = 1 << 21

    // MARK: Public API

    public static func multiply(
        transposeA: Bool, transposeB: Bool,
        m: Int, n: Int, k: Int,
        alpha: Float,
        a: UnsafePointer<Float>, lda: Int,
        b: UnsafePointer<Float>, ldb: Int,
        beta: Float,
        c: UnsafeMutablePointer<Float>, ldc: Int,
        threads: Int
    ) {
        precondition(m >= 0 && n >= 0 && k >= 0, "GEMM: negative dimension")
        precondition(ldc >= max(1, n), "GEMM: ldc too small")
        precondition(lda >= max(1, transposeA ? m : k), "GEMM: lda too small")
        precondition(ldb >= max(1, transposeB ? k : n), "GEMM: ldb too small")
        if m == 0 || n == 0 { return }
        if k == 0 || alpha == 0 {
            scaleC(m: m, n: n, beta: beta, c: c, ldc: ldc)
            return
        }
        let problem = Problem(
            transA: transposeA, transB: transposeB, m: m, n: n, k: k, alpha: alpha,
            a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)

        let flops = 2.0 * Double(m) * Double(n) * Double(k)
        var parts = threads > 1 && flops >= Double(parallelFlopThreshold) ? threads : 1
        // Split C along n when duplicating A's packing (m·k) is cheaper than duplicating B's (k·n),
        // else along m. Split points fall on micro-tile boundaries.
        let nUnits = (n + nr - 1) / nr
        let mUnits = (m + mr - 1) / mr
        let splitN = (m <= n && nUnits >= 2) || mUnits < 2
        parts = min(parts, splitN ? nUnits : mUnits)
        if parts <= 1 {
            withWorkspace { ws in
                problem.run(m0: 0, m1: m, n0: 0, n1: n, ws: ws)
            }
            return
        }
        let units = splitN ? nUnits : mUnits
        let unit = splitN ? nr : mr
        DispatchQueue.concurrentPerform(iterations: parts) { t in
            let u0 = units * t / parts, u1 = units * (t + 1) / parts
            if u0 == u1 { return }
            withWorkspace { ws in
                if splitN {
                    problem.run(m0: 0, m1: m, n0: u0 * unit, n1: min(n, u1 * unit), ws: ws)
                } else {
                    problem.run(m0: u0 * unit, m1: min(m, u1 * unit), n0: 0, n1: n, ws: ws)
                }
            }
        }
    }

    /// Straightforward triple loop, the oracle for tests.
    public static func reference(
        transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, alpha: Float,
        a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int, beta: Float,
        c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        if m == 0 || n == 0 { return }
        if k == 0 || alpha == 0 {
            scaleC(m: m, n: n, beta: beta, c: c, ldc: ldc)
            return
        }
        for i in 0..<m {
            for j in 0..<n {
                var sum: Float = 0
                for p in 0..<k {
                    let av = transposeA ? a[p * lda + i] : a[i * lda + p]
                    let bv = transposeB ? b[j * ldb + p] : b[p * ldb + j]
                    sum += av * bv
                }
                let old = c[i * ldc + j]
                c[i * ldc + j] = beta == 0 ? alpha * sum : alpha * sum + beta * old
            }
        }
    }

    // MARK: Internals

    /// C = beta · C (beta == 0 writes zeros without reading C).
    static func scaleC(m: Int, n: Int, beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
        if beta == 1 { return }
        for i in 0..<m {
            let row = c + i * ldc
            if beta == 0 {
                row.update(repeating: 0, count: n)
            } else {
                for j in 0..<n { row[j] = beta * row[j] }
            }
        }
    }

    /// The k-block length used for a given k: balanced blocks of at most kcMax. Depends on k only.
    @inline(__always)
    static func kBlock(_ k: Int) -> Int {
        let blocks = (k + kcMax - 1) / kcMax
        return (k + blocks - 1) / blocks
    }

    struct Problem {
        let transA: Bool, transB: Bool
        let m: Int, n: Int, k: Int
        let alpha: Float
        let a: UnsafePointer<Float>, lda: Int
        let b: UnsafePointer<Float>, ldb: Int
        let beta: Float
        let c: UnsafeMutablePointer<Float>, ldc: Int

        /// Computes the rectangle C[m0..<m1, n0..<n1] (n0 a multiple of nr or m0 a multiple of mr
        /// when called from the threaded split; any values are correct).
        func run(m0: Int, m1: Int, n0: Int, n1: Int, ws: Workspace) {
            let kc = kBlock(k)
            let mcMax = min(mcBlock, roundUp(m1 - m0, mr))
            let ncMax = min(ncBlock, roundUp(n1 - n0, nr))
            ws.reserve(aCount: mcMax * kc, bCount: ncMax * kc)
            let ap = ws.a, bp = ws.b, scratch = ws.scratch

            var jc = n0
            while jc < n1 {
                let nc = min(ncBlock, n1 - jc)
                var pc = 0
                while pc < k {
                    let kcur = min(kc, k - pc)
                    packB(trans: transB, b: b, ldb: ldb, p0: pc, kc: kcur, j0: jc, nc: nc, dst: bp)
                    let betaEff: Float = pc == 0 ? beta : 1
                    var ic = m0
                    while ic < m1 {
                        let mc = min(mcBlock, m1 - ic)
                        packA(trans: transA, a: a, lda: lda, i0: ic, mc: mc, p0: pc, kc: kcur, dst: ap)
                        macroKernel(mc: mc, nc: nc, kc: kcur, ap: ap, bp: bp,
                                    c: c + ic * ldc + jc, beta: betaEff, scratch: scratch)
                        ic += mc
                    }
                    pc += kcur
                }
                jc += nc
            }
        }

        /// All micro-tiles of one packed mc×kc A block times one packed kc×nc B block.
        @inline(__always)
        func macroKernel(mc: Int, nc: Int, kc: Int, ap: UnsafeMutablePointer<Float>,
                         bp: UnsafeMutablePointer<Float>, c: UnsafeMutablePointer<Float>,
                         beta: Float, scratch: UnsafeMutablePointer<Float>) {
            let alpha = self.alpha, ldc = self.ldc
            var ir = 0
            while ir < mc {
                let rows = min(mr, mc - ir)
                let aPanel = UnsafePointer(ap + ir * kc)
                var jr = 0
                while jr < nc {
                    let left = nc - jr
                    // Trailing ≤16 columns use the one-register-wide kernel (16-wide panel).
                    let width = left <= 16 ? 16 : nr
                    let cols = min(width, left)
                    let bPanel = UnsafePointer(bp + jr * kc)
                    let cTile = c + ir * ldc + jr
                    if rows == mr && cols == width {
                        if width == nr {
                            kernel8x32(kc, aPanel, bPanel, cTile, ldc, alpha, beta)
                        } else {
                            kernel8x16(kc, aPanel, bPanel, cTile, ldc, alpha, beta)
                        }
                    } else {
                        // Edge tile: full tile into scratch (alpha·acc), then the same formula as
                        // the kernel's store, element by element, on the valid part only.
                        if width == nr {
                            kernel8x32(kc, aPanel, bPanel, scratch, width, alpha, 0)
                        } else {
                            kernel8x16(kc, aPanel, bPanel, scratch, width, alpha, 0)
                        }
                        storeEdge(rows: rows, cols: cols, src: scratch, srcStride: width,
                                  c: cTile, ldc: ldc, beta: beta)
                    }
                    jr += width
                }
                ir += mr
            }
        }
    }

    /// c = s (beta == 0), c = c + s (beta == 1), c = s + beta·c otherwise, where s = alpha·acc.
    /// Matches the SIMD stores in the kernels operation for operation.
    @inline(__always)
    static func storeEdge(rows: Int, cols: Int, src: UnsafeMutablePointer<Float>, srcStride: Int,
                          c: UnsafeMutablePointer<Float>, ldc: Int, beta: Float) {
        for i in 0..<rows {
            let s = src + i * srcStride, d = c + i * ldc
            if beta == 0 {
                for j in 0..<cols { d[j] = s[j] }
            } else if beta == 1 {
                for j in 0..<cols { d[j] = d[j] + s[j] }
            } else {
                for j in 0..<cols { d[j] = s[j] + beta * d[j] }
            }
        }
    }

    @inline(__always)
    static func roundUp(_ x: Int, _ to: Int) -> Int { (x + to - 1) / to * to }

    // MARK: Workspaces

    /// Packing buffers of one running multiply. Grown on demand, never shrunk, reused across calls
    /// through `pool`; a workspace is used by exactly one thread at a time.
    final class Workspace: @unchecked Sendable {
        private(set) var a: UnsafeMutablePointer<Float>
        private(set) var b: UnsafeMutablePointer<Float>
        let scratch: UnsafeMutablePointer<Float>
        private var aCapacity = 0, bCapacity = 0

        init() {
            a = Workspace.allocate(0)
            b = Workspace.allocate(0)
            scratch = Workspace.allocate(mr * nr)
        }

        deinit {
            a.deallocate()
            b.deallocate()
            scratch.deallocate()
        }

        func reserve(aCount: Int, bCount: Int) {
            if aCount > aCapacity {
                a.deallocate()
                aCapacity = max(aCount, aCapacity * 2)
                a = Workspace.allocate(aCapacity)
            }
            if bCount > bCapacity {
                b.deallocate()
                bCapacity = max(bCount, bCapacity * 2)
                b = Workspace.allocate(bCapacity)
            }
        }

        private static func allocate(_ count: Int) -> UnsafeMutablePointer<Float> {
            UnsafeMutableRawPointer.allocate(byteCount: max(count, 16) * 4, alignment: 64)
                .bindMemory(to: Float.self, capacity: max(count, 16))
        }
    }

    /// Idle workspaces. A call takes one per participating thread and gives it back afterwards,
    /// so in steady state nothing is allocated, and concurrent callers never share a buffer.
    static let pool = Mutex<[Workspace]>([])

    @inline(__always)
    static func withWorkspace(_ body: (Workspace) -> Void) {
        let ws = pool.withLock { $0.popLast() } ?? Workspace()
        body(ws)
        pool.withLock { $0.append(ws) }
    }
}

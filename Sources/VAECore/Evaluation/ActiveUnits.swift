/// Active units (Burda et al. 2016): latent dimension j is active when the posterior mean moves with the
/// data, A_j = Cov_x(E_q(z|x)[z_j]) > 0.01. A dimension the decoder ignores collapses onto the prior,
/// its posterior mean stops depending on x, and its variance across the data set falls to ~0.
public enum ActiveUnits {
    public static let threshold = 0.01

    /// The variance over examples of each dimension's posterior mean (`means`: rows × dims, row-major),
    /// in Double with the two-pass formula (a mean of ~1 and a variance of 1e-4 lose nothing).
    public static func variances(means: [Float], dims: Int) -> [Double] {
        guard dims > 0 else { return [] }
        let rows = means.count / dims
        guard rows > 1 else { return Array(repeating: 0, count: dims) }
        var mean = [Double](repeating: 0, count: dims)
        for r in 0..<rows { for j in 0..<dims { mean[j] += Double(means[r * dims + j]) } }
        for j in 0..<dims { mean[j] /= Double(rows) }
        var variance = [Double](repeating: 0, count: dims)
        for r in 0..<rows {
            for j in 0..<dims {
                let d = Double(means[r * dims + j]) - mean[j]
                variance[j] += d * d
            }
        }
        return variance.map { $0 / Double(rows - 1) }
    }

    public static func count(_ variances: [Double]) -> Int { variances.filter { $0 > threshold }.count }
}

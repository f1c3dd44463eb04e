import XCTest
@testable import VAECore

/// `vaec compile --dot` draws each fused kernel as a cluster: the clusters come from the real lowering.
final class DotClusterTests: XCTestCase {
    func testFusedKernelsBecomeClustersOfTheDotPicture() throws {
        let result = try Compiler.compile(path: TestPaths.samples.appendingPathComponent("mnist.vae").path)
        let graph = result.program.graph
        let outputs = [OutputName.loss, OutputName.reconstruction, OutputName.kl] + result.model.parameters.map { OutputName.gradient($0.name) }
        let clusters = Lowering.fusedClusters(graph, outputs: outputs)
        XCTAssertGreaterThan(clusters.count, 1)
        // Every node is in at most one kernel, and no matrix product is inside a fused kernel.
        let all = clusters.flatMap { $0 }
        XCTAssertEqual(Set(all).count, all.count)
        XCTAssertTrue(all.allSatisfy { graph[$0].op.kind != .matrix && graph[$0].op.kind != .leaf })
        // The Bernoulli likelihood's softplus and its gradient's sigmoid are one pass over memory.
        let softplus = graph.nodes.indices.first { graph[$0].op == .softplus }!
        let sigmoid = graph.nodes.indices.first { graph[$0].op == .sigmoid }!
        XCTAssertTrue(clusters.contains { $0.contains(softplus) && $0.contains(sigmoid) })
        let dot = DotWriter(title: "mnist", clusters: clusters).write(graph)
        XCTAssertEqual(dot.components(separatedBy: "subgraph cluster_").count - 1, clusters.count)
    }
}

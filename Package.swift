// swift-tools-version:5.9
import PackageDescription

// Release builds target this machine's CPU: Swift's SIMD types otherwise compile for baseline x86-64
// (a SIMD16<Float> FMA kernel measured 0.9 GFLOP/s by default against 76–93 GFLOP/s with native).
let releaseFlags: [SwiftSetting] = [
    .unsafeFlags(["-target-cpu", "native", "-Ounchecked", "-wmo"], .when(configuration: .release)),
]

let package = Package(
    name: "vaec",
    products: [
        .library(name: "VAECore", targets: ["VAECore"]),
        .executable(name: "vaec", targets: ["vaec"]),
    ],
    targets: [
        .target(name: "VAECore", swiftSettings: releaseFlags),
        .executableTarget(name: "vaec", dependencies: ["VAECore"], swiftSettings: releaseFlags),
        .testTarget(name: "VAECoreTests", dependencies: ["VAECore"], exclude: ["Fixtures"]),
    ]
)

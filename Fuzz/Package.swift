// swift-tools-version:5.4
// libFuzzer targets for the wire decoders. A package of its own, so the root `swift build` never
// links a fuzzer entry point. Build and run with `Fuzz/run.sh` (see Fuzz/README.md).
//
// Tools version 5.4 on purpose: from 5.5 on, SwiftPM links every Swift executable with
// `--defsym main=<Module>_main`, a symbol that a `-parse-as-library` target without `@main` does not
// have; the fuzzer's own `main` (from `-sanitize=fuzzer`) must be the entry point instead. The
// harnesses are therefore compiled in Swift 5 mode; the code under test keeps its own settings.
import PackageDescription

let package = Package(
    name: "tierline-fuzz",
    dependencies: [
        // Named, so the products resolve whatever the checkout's folder is called.
        .package(name: "tierline", path: ".."),
    ],
    targets: [
        .target(
            name: "FuzzSupport",
            dependencies: [
                .product(name: "SyncWire", package: "tierline"),
                .product(name: "TicketModel", package: "tierline"),
            ]),
        .executableTarget(
            name: "FuzzFrame",
            dependencies: [
                "FuzzSupport",
                .product(name: "SyncWire", package: "tierline"),
            ]),
        .executableTarget(
            name: "FuzzChangeSet",
            dependencies: [
                "FuzzSupport",
                .product(name: "SyncWire", package: "tierline"),
                .product(name: "TicketModel", package: "tierline"),
            ]),
        .executableTarget(
            name: "FuzzColumnar",
            dependencies: [
                "FuzzSupport",
                .product(name: "SyncWire", package: "tierline"),
                .product(name: "TicketModel", package: "tierline"),
            ]),
        .executableTarget(
            name: "FuzzBlock",
            dependencies: [
                "FuzzSupport",
                .product(name: "TicketModel", package: "tierline"),
            ]),
    ]
)

import ArgumentParser
import FaultProxy
import Foundation
import Logging
import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// `tierline-faultproxy`: a TCP proxy with injected latency, loss, cuts and partitions, for tests
/// on machines without netem. See ``FaultProxy`` for the fault model.
struct FaultProxyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tierline-faultproxy",
        abstract: "Relay TCP connections from --listen to --upstream with injected latency, loss, cuts and partitions.",
        discussion: """
        Prints `listening on HOST:PORT` on stdout once bound (port 0 picks a free port). SIGUSR1 starts \
        a partition (open connections are reset, new ones reset at once), SIGUSR2 heals it. SIGTERM or \
        SIGINT stop the proxy; its counters go to stderr as one line `counters {JSON}`.

        Loss is modelled as TCP sees it: a lost chunk is not dropped but delivered late, after a \
        retransmission timeout (--retransmit-ms, doubling for each further loss of the same chunk), \
        and the chunks behind it wait for it.
        """)

    @Option(help: "Accept connections on HOST:PORT (port 0 picks a free port).")
    var listen: String

    @Option(help: "Relay each connection to HOST:PORT.")
    var upstream: String

    @Option(name: .customLong("latency-ms"), help: "One-way delay added to every chunk, both directions, ms.")
    var latencyMillis = 0

    @Option(name: .customLong("jitter-ms"), help: "Extra delay drawn from 0...N ms per chunk (never reorders).")
    var jitterMillis = 0

    @Option(help: "Probability (0 to below 1) that a transmission of a chunk is lost and retransmitted.")
    var loss = 0.0

    @Option(name: .customLong("retransmit-ms"), help: "First retransmission timeout of a lost chunk, ms; doubles per further loss.")
    var retransmitMillis = 200

    @Option(name: .customLong("cut-every-ms"), help: "Mean lifetime of a connection before a random reset, ms; 0 = no cuts.")
    var cutEveryMillis = 0

    @Option(help: "Seed of every random choice.")
    var seed: UInt64 = 1

    @Option(name: .customLong("log-level"), help: "Log level on stderr: trace, debug, info, notice, warning, error, critical.")
    var logLevel = "info"

    func makeConfiguration() throws(FaultProxyError) -> FaultProxyConfiguration {
        var faults = FaultProfile()
        faults.latencyMillis = latencyMillis
        faults.jitterMillis = jitterMillis
        faults.loss = loss
        faults.retransmitMillis = retransmitMillis
        faults.cutEveryMillis = cutEveryMillis
        faults.seed = seed
        return FaultProxyConfiguration(listen: try ProxyAddress(parsing: listen), upstream: try ProxyAddress(parsing: upstream),
                                       faults: faults)
    }

    func validate() throws {
        func flag(_ name: String, _ check: () throws -> Void) throws {
            do { try check() } catch let error as FaultProxyError { throw ValidationError("\(name): \(error.detail)") }
        }
        try flag("--listen") { _ = try ProxyAddress(parsing: listen) }
        try flag("--upstream") { _ = try ProxyAddress(parsing: upstream) }
        var faults = FaultProfile()
        try flag("--latency-ms") { faults.latencyMillis = latencyMillis; try faults.validate() }
        try flag("--jitter-ms") { faults.jitterMillis = jitterMillis; try faults.validate() }
        try flag("--loss") { faults.loss = loss; try faults.validate() }
        try flag("--retransmit-ms") { faults.retransmitMillis = retransmitMillis; try faults.validate() }
        try flag("--cut-every-ms") { faults.cutEveryMillis = cutEveryMillis; try faults.validate() }
        guard Logger.Level(rawValue: logLevel) != nil else {
            throw ValidationError("--log-level: \(logLevel.debugDescription) is not one of trace, debug, info, notice, warning, error, critical")
        }
    }

    func run() async throws {
        let level = Logger.Level(rawValue: logLevel) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "tierline.faultproxy")
        let signals = SignalWatch([SIGUSR1, SIGUSR2, SIGTERM, SIGINT])
        let proxy = try FaultProxy(configuration: try makeConfiguration(), logger: logger)
        let address: SocketAddress
        do {
            address = try await proxy.start()
        } catch {
            await proxy.stop()
            throw StartFailure(message: "cannot listen on \(listen): \(error)")
        }
        let host = address.ipAddress ?? listen
        let shown = host.contains(":") ? "[\(host)]:\(address.port ?? 0)" : "\(host):\(address.port ?? 0)"
        FileHandle.standardOutput.write(Data("listening on \(shown)\n".utf8))

        for await signal in signals.stream {
            switch signal {
            case SIGUSR1:
                await proxy.partition()
                let counters = await proxy.counters()
                logger.notice("SIGUSR1: partitioned", metadata: ["counters": "\(Self.json(counters))"])
            case SIGUSR2:
                await proxy.heal()
                let counters = await proxy.counters()
                logger.notice("SIGUSR2: healed", metadata: ["counters": "\(Self.json(counters))"])
            default:
                logger.notice("stopping", metadata: ["signal": "\(signal == SIGTERM ? "SIGTERM" : "SIGINT")"])
                await proxy.stop()
                let counters = await proxy.counters()
                FileHandle.standardError.write(Data("counters \(Self.json(counters))\n".utf8))
                return
            }
        }
    }

    static func json(_ counters: FaultCounters) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return (try? encoder.encode(counters)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }

    /// Exit codes: 0 ok, 1 failure, 2 usage (ArgumentParser's 64 becomes 2).
    static func start() async {
        do {
            var command = try parseAsRoot()
            if var async = command as? any AsyncParsableCommand { try await async.run() } else { try command.run() }
        } catch let error as StartFailure {
            fail(error.message, code: 1)
        } catch {
            switch exitCode(for: error) {
            case .success: exit(withError: error)
            case .validationFailure: fail(fullMessage(for: error), code: 2)
            default: fail(fullMessage(for: error).isEmpty ? "\(error)" : fullMessage(for: error), code: 1)
            }
        }
    }

    static func fail(_ message: String, code: Int32) -> Never {
        let text = message.hasPrefix("Error: ") ? "error: " + message.dropFirst(7) : "error: " + message
        FileHandle.standardError.write(Data((text + "\n").utf8))
        Foundation.exit(code)
    }
}

/// The proxy could not start (exit 1).
struct StartFailure: Error {
    var message: String
}

/// Delivers the given signals as an async stream instead of running their default action.
final class SignalWatch {
    let stream: AsyncStream<Int32>
    private let sources: [any DispatchSourceSignal]

    init(_ numbers: [Int32]) {
        let (stream, continuation) = AsyncStream<Int32>.makeStream(bufferingPolicy: .bufferingNewest(16))
        self.stream = stream
        let queue = DispatchQueue(label: "tierline.faultproxy.signals")
        sources = numbers.map { number in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: queue)
            source.setEventHandler { continuation.yield(number) }
            source.resume()
            return source
        }
    }
}

await FaultProxyCommand.start()

/// A `HOST:PORT` address of the proxy (`[::1]:7400` for IPv6 literals).
public struct ProxyAddress: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Parses `HOST:PORT`; port 0 is allowed (bind picks a free port).
    ///
    /// ```swift
    /// let address = try ProxyAddress(parsing: "10.77.1.2:7400")
    /// ```
    /// - Throws: ``FaultProxyError`` with code `badAddress`, saying what is wrong.
    public init(parsing text: String) throws(FaultProxyError) {
        let host: Substring
        let portText: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]"), text[text.index(after: close)...].hasPrefix(":") else {
                throw FaultProxyError(.badAddress, "\(text.debugDescription) is not HOST:PORT; write IPv6 addresses as [::1]:7400")
            }
            host = text[text.index(after: text.startIndex)..<close]
            portText = text[text.index(close, offsetBy: 2)...]
        } else {
            guard let colon = text.lastIndex(of: ":"), !text[..<colon].contains(":") else {
                throw FaultProxyError(.badAddress, "\(text.debugDescription) is not HOST:PORT (for example 127.0.0.1:7400)")
            }
            host = text[..<colon]
            portText = text[text.index(after: colon)...]
        }
        guard !host.isEmpty else { throw FaultProxyError(.badAddress, "\(text.debugDescription) has no host") }
        guard let port = Int(portText), (0...65535).contains(port) else {
            throw FaultProxyError(.badAddress, "\(text.debugDescription) has no port between 0 and 65535")
        }
        self.host = String(host)
        self.port = port
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

/// The faults a ``FaultProxy`` injects. All durations are milliseconds.
///
/// The defaults inject nothing: a plain, in-order TCP relay.
///
/// ```swift
/// var faults = FaultProfile()
/// faults.latencyMillis = 50      // one way, both directions
/// faults.loss = 0.1              // 10 % of chunks pay a retransmission delay
/// faults.cutEveryMillis = 4000   // each connection lives ~4 s on average
/// faults.seed = 7
/// ```
public struct FaultProfile: Sendable, Hashable {
    /// Delay added to every chunk, one way (a round trip pays it twice).
    public var latencyMillis: Int = 0
    /// Extra delay drawn uniformly from `0...jitterMillis` per chunk; it never reorders chunks.
    public var jitterMillis: Int = 0
    /// Probability (`0..<1`) that one transmission of a chunk is lost and must be retransmitted.
    public var loss: Double = 0
    /// The first retransmission timeout; each further loss of the same chunk doubles it.
    public var retransmitMillis: Int = 200
    /// Most retransmissions of one chunk; the last one always gets through (TCP would give up
    /// and reset much later; a test wants delay, not a reset, from loss — use cuts for resets).
    public var maxRetransmissions: Int = 6
    /// Mean lifetime of a connection before the proxy resets it; 0 turns cuts off.
    public var cutEveryMillis: Int = 0
    /// Seeds every random choice, so a run's decisions repeat for the same connections and chunks.
    public var seed: UInt64 = 1

    public init() {}

    /// Checks the ranges; the error names the setting.
    /// - Throws: ``FaultProxyError`` with code `badSetting`.
    public func validate() throws(FaultProxyError) {
        func check(_ ok: Bool, _ message: String) throws(FaultProxyError) {
            if !ok { throw FaultProxyError(.badSetting, message) }
        }
        try check((0...60_000).contains(latencyMillis), "latency must be between 0 and 60000 ms, not \(latencyMillis)")
        try check((0...60_000).contains(jitterMillis), "jitter must be between 0 and 60000 ms, not \(jitterMillis)")
        try check(loss >= 0 && loss < 1, "loss must be a probability at least 0 and below 1, not \(loss)")
        try check((1...60_000).contains(retransmitMillis), "retransmit must be between 1 and 60000 ms, not \(retransmitMillis)")
        try check((0...16).contains(maxRetransmissions), "maxRetransmissions must be between 0 and 16, not \(maxRetransmissions)")
        try check(cutEveryMillis == 0 || (1...3_600_000).contains(cutEveryMillis),
                  "cut-every must be 0 (off) or between 1 and 3600000 ms, not \(cutEveryMillis)")
    }
}

/// Where a ``FaultProxy`` listens, where it forwards to, what it injects and its bounds.
public struct FaultProxyConfiguration: Sendable, Hashable {
    /// The address to accept connections on; port 0 picks a free port.
    public var listen: ProxyAddress
    /// The address every accepted connection is forwarded to.
    public var upstream: ProxyAddress
    public var faults: FaultProfile
    /// Most connections relayed at once; more are accepted and reset at once.
    public var maxConnections: Int = 256
    /// Most bytes held (read, not yet delivered) per direction of one connection. Past it the proxy
    /// stops reading that side until deliveries drain the queue below it.
    public var maxQueuedBytes: Int = 256 * 1024
    /// How long the proxy waits for the upstream to accept a connection.
    public var connectTimeoutMillis: Int = 5_000
    /// SO_RCVBUF and SO_SNDBUF of the proxy's sockets (the kernel doubles the value it is given);
    /// `nil` leaves the kernel's autotuning. Small buffers make backpressure reach the sender
    /// sooner, and bound what the proxy reads at once when a side closes (see ``FaultProxy``).
    public var socketBufferBytes: Int?

    public init(listen: ProxyAddress, upstream: ProxyAddress, faults: FaultProfile = FaultProfile()) {
        self.listen = listen
        self.upstream = upstream
        self.faults = faults
    }

    /// Checks the faults and the bounds; the error names the setting.
    /// - Throws: ``FaultProxyError`` with code `badSetting`.
    public func validate() throws(FaultProxyError) {
        try faults.validate()
        guard (1...65_536).contains(maxConnections) else {
            throw FaultProxyError(.badSetting, "maxConnections must be between 1 and 65536, not \(maxConnections)")
        }
        guard (1024...(64 << 20)).contains(maxQueuedBytes) else {
            throw FaultProxyError(.badSetting, "maxQueuedBytes must be between 1 KiB and 64 MiB, not \(maxQueuedBytes)")
        }
        guard (1...600_000).contains(connectTimeoutMillis) else {
            throw FaultProxyError(.badSetting, "connectTimeoutMillis must be between 1 and 600000, not \(connectTimeoutMillis)")
        }
        if let socketBufferBytes, !(4096...(64 << 20)).contains(socketBufferBytes) {
            throw FaultProxyError(.badSetting, "socketBufferBytes must be between 4 KiB and 64 MiB, not \(socketBufferBytes)")
        }
    }
}

/// A bad address or setting, or a proxy used in the wrong state.
public struct FaultProxyError: Error, Hashable, CustomStringConvertible {
    public enum Code: String, Sendable { case badAddress, badSetting, notStarted, alreadyStarted }
    public var code: Code
    public var detail: String
    public init(_ code: Code, _ detail: String) {
        self.code = code
        self.detail = detail
    }
    public var description: String { "\(code.rawValue): \(detail)" }
}

/// What a ``FaultProxy`` did so far; read it with ``FaultProxy/counters()``.
public struct FaultCounters: Sendable, Hashable, Codable {
    /// Connections accepted and relayed (an upstream connection was attempted).
    public var connections = 0
    /// Connections open right now.
    public var open = 0
    /// Connections accepted and reset at once: during a partition, while stopping, or past `maxConnections`.
    public var refused = 0
    /// Relayed connections whose upstream could not be reached (the client was reset).
    public var upstreamFailures = 0
    /// Bytes delivered client → upstream and upstream → client.
    public var bytesToUpstream = 0
    public var bytesToClient = 0
    /// Chunks read (both directions), and those that paid at least one retransmission delay.
    public var chunks = 0
    public var chunksDelayedAsLost = 0
    /// Retransmissions in all (a chunk lost twice counts two).
    public var retransmissions = 0
    /// Connections reset by a random cut.
    public var cuts = 0
    /// Open connections reset when a partition began.
    public var partitionResets = 0
    /// Partitions begun and healed.
    public var partitions = 0
    public var heals = 0
    /// The most bytes one direction of one connection ever held: at most `maxQueuedBytes` plus one
    /// read (64 KiB) while both sides are open; when a side closes, plus what its socket still held.
    public var peakQueuedBytes = 0

    public init() {}
}

import Foundation
import NIOCore
import NIOPosix

/// NIO's connect and bind errors in words an operator can act on.
///
/// NIO describes a refused connection as `NIOConnectionError(... SingleConnectionFailure(... errno: 111))`
/// and a busy port as `bind(descriptor:ptr:bytes:): Address already in use (errno: 98)`: true, but it
/// names neither the address nor what to change. These say both.
///
/// ```swift
/// SocketFailure.connecting(to: "127.0.0.1:7499", error)
/// // "could not connect to 127.0.0.1:7499: connection refused; is `tierline serve` listening there?"
/// ```
public enum SocketFailure {
    /// Why a connection to `address` (`HOST:PORT`) could not be opened.
    public static func connecting(to address: String, _ error: any Error) -> String {
        "could not connect to \(address): \(reason(connecting: error))"
    }

    /// The reason alone, without the address: `connection refused; is …`.
    static func reason(connecting error: any Error) -> String {
        if let connection = error as? NIOConnectionError {
            if let failure = connection.connectionErrors.first {
                return reason(connecting: failure.error)
            }
            if connection.dnsAError != nil || connection.dnsAAAAError != nil {
                return "the host \(connection.host) was not found (it does not resolve); check the name, or give an IP address"
            }
        }
        if error is SocketAddressError.UnknownHost {
            return "the host was not found (it does not resolve); check the name, or give an IP address"
        }
        if case ChannelError.connectTimeout(let amount)? = error as? ChannelError {
            return "no answer within \(amount.nanoseconds / 1_000_000_000) s (timed out); check the address, and that a firewall lets the port through"
        }
        guard let io = error as? IOError else { return "\(error)" }
        switch io.errnoCode {
        case ECONNREFUSED: return "connection refused; is `tierline serve` listening there?"
        case ETIMEDOUT: return "no answer (timed out); check the address, and that a firewall lets the port through"
        case EHOSTUNREACH, ENETUNREACH: return "no route to the host (\(String(cString: strerror(io.errnoCode)))); check the address and the network"
        case ECONNRESET: return "the connection was reset; is `tierline serve` listening there, and is it the sync port?"
        default: return "\(String(cString: strerror(io.errnoCode))) (errno \(io.errnoCode))"
        }
    }

    /// Whether the peer's host answered the connection attempt, refusing it (nothing listens on the
    /// port, or a node restarts), rather than staying silent (a timeout, no route, no such host).
    static func isAnswer(_ error: any Error) -> Bool {
        if let connection = error as? NIOConnectionError, let failure = connection.connectionErrors.first {
            return isAnswer(failure.error)
        }
        guard let io = error as? IOError else { return false }
        return io.errnoCode == ECONNREFUSED || io.errnoCode == ECONNRESET
    }

    /// Why `address` could not be bound, naming the setting that chooses it (for example `--listen
    /// (listen in node.json)`), or `nil` when `error` is not a failed bind (or a host to bind that
    /// does not resolve).
    public static func binding(_ address: String, setting: String, _ error: any Error) -> String? {
        // A name to listen on is resolved first; NIO's words for one that does not resolve name no setting.
        if let unknown = error as? SocketAddressError.UnknownHost {
            return "cannot listen on \(address): the host \(unknown.host) does not resolve; give one of this machine's addresses (or 0.0.0.0) with \(setting)"
        }
        // NIO names the failed system call first: `bind(descriptor:ptr:bytes:): …`.
        guard let io = error as? IOError, "\(io)".hasPrefix("bind(") else { return nil }
        let reason: String
        switch io.errnoCode {
        case EADDRINUSE: reason = "the address is already in use (another node or program listens there); stop it, or choose another port with \(setting)"
        case EADDRNOTAVAIL: reason = "this machine has no such address; choose one of its own addresses (or 0.0.0.0) with \(setting)"
        case EACCES: reason = "permission denied (ports below 1024 need privileges); choose a port above 1024 with \(setting)"
        default: reason = "\(String(cString: strerror(io.errnoCode))) (errno \(io.errnoCode)); check \(setting)"
        }
        return "cannot listen on \(address): \(reason)"
    }
}

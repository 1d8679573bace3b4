import ArgumentParser
import Dashboard
import Escalation
import Foundation
import Intake
import Logging
import Prometheus
import ServiceLifecycle
import UnixSignals
import SyncNode
import TicketModel
import TicketStore

/// `--tls-cert`, `--tls-key`, `--tls-ca`, `--tls-server-name` of `serve` and `sync`.
struct TLSOptions: ParsableArguments {
    @Option(name: .customLong("tls-cert"), help: ArgumentHelp("TLS: this side's certificate chain, a PEM file (with --tls-key).", valueName: "PEM"))
    var certificate: String?
    @Option(name: .customLong("tls-key"), help: ArgumentHelp("TLS: the private key of --tls-cert, a PEM file.", valueName: "PEM"))
    var key: String?
    @Option(name: .customLong("tls-ca"), help: ArgumentHelp("TLS: the CA certificates that sign the peers' certificates, a PEM file (a listener then requires client certificates).", valueName: "PEM"))
    var ca: String?
    @Option(name: .customLong("tls-server-name"), help: ArgumentHelp("TLS: the name to check in the certificate of the node dialed (default: its HOST).", valueName: "NAME"))
    var serverName: String?
    @Option(name: .customLong("allow-plain"), help: ArgumentHelp("Admit plain protocol-1 sessions with SITE (a site not yet upgraded) besides TLS ones, for an upgrade window: unprotected; repeat for more sites (node.json: allowPlainSessions).", valueName: "SITE"))
    var allowPlain: [String] = []

    var isSet: Bool { certificate != nil || key != nil || ca != nil || serverName != nil }

    /// `base` (the file's `tls`) with the flags laid over it; `nil` when neither turns TLS on.
    func applied(to base: TLSSettings?) -> TLSSettings? {
        guard isSet else { return base }
        var tls = base ?? TLSSettings()
        if let certificate { tls.certificateFile = certificate }
        if let key { tls.keyFile = key }
        if let ca { tls.caFile = ca }
        if let serverName { tls.serverName = serverName }
        return tls
    }
}

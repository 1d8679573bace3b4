import Foundation
import Logging
import Notify
import SyncNode
import TestSupport
import Testing
import TicketModel
import TicketStore

/// ServiceLifecycle logs every service with `String(describing:)` (at debug level): the services
/// serve runs, and what they hold, print no secret however they are printed.
@Suite struct RedactionTests {
    /// Every way a value is commonly printed: description, debug description, and `dump`.
    func printed(_ value: Any) -> [String] {
        var dumped = ""
        dump(value, to: &dumped)
        return [String(describing: value), String(reflecting: value), "\(value)", dumped]
    }

    @Test func theSiteKeyTheStoreTheSecretsTheDispatcherAndTheNodePrintNoSecret() throws {
        let key = SiteKey.generate()
        let store = try memoryStore("north", key: key)
        let password = "correct horse battery staple"
        let hookKey: [UInt8] = Array(0..<32).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 0x51) }
        var secrets = NotificationSecrets()
        secrets.smtpPassword = password
        secrets.webhookKeys["oncall"] = hookKey
        let settings = NotificationSettings {
            $0.smtp = SMTPSettings(host: "relay.example.org", username: "tierline", passwordFile: "/etc/p", from: "help@example.org")
            $0.webhooks = [WebhookSettings(name: "oncall", url: "https://hooks.example.org/services/T0/B0/SECRETPATHTOKEN", secretFile: "/etc/h")]
        }
        let dispatcher = NotificationDispatcher(store: store, settings: settings, secrets: secrets, logger: Logger(label: "test"))
        let node = try SyncNode(store: store, key: key, configuration: NodeConfiguration())
        // Each key as hex, as an array literal, and as `dump` lists bytes (one a line; spaces dropped below).
        func forms(_ bytes: [UInt8]) -> [String] {
            [bytes.hexString, "\(bytes)", bytes.prefix(6).map { "-\($0)" }.joined(separator: "\n")]
        }
        let forbidden = forms(key.rawRepresentation) + forms(hookKey) + [password, "SECRETPATHTOKEN"]
        let values: [(String, Any)] = [("SiteKey", key), ("TicketDatabase", store), ("NotificationSecrets", secrets),
                                       ("NotificationDispatcher", dispatcher), ("SyncNode", node)]
        for (name, value) in values {
            for text in printed(value) {
                for secret in forbidden {
                    #expect(!text.contains(secret) && !text.replacingOccurrences(of: " ", with: "").contains(secret), "\(name) printed a secret: \(text.prefix(300))")
                }
                #expect(text.contains("redacted"), "\(name) says what it hides: \(text.prefix(300))")
            }
        }
        #expect(String(describing: key).contains(key.publicKey.hexString), "a site key shows its public key")
    }
}

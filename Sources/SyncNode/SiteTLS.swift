import Crypto
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOSSL
import SwiftASN1
import TicketModel
import X509

/// TLS whose identities are the roster's site keys (`Protocol/PROTOCOL.md` §2.12).
///
/// Each node presents a certificate made at start from its own `site.key` (Ed25519), self-signed: no
/// CA is involved. TLS 1.3's handshake proves that each end holds the private key of the certificate
/// it presents, bound to this connection; the session then requires the key in the peer's `hello` to
/// be that key, and the roster to list it for the site the hello names. So a proof made on one
/// connection is worthless on another, and a party with no roster key reads and writes nothing: the
/// relay that protocol 1's `auth` alone allowed has nothing to relay.
///
/// swift-certificates makes the certificate; swift-nio-ssl (BoringSSL) runs TLS. Nothing here signs or
/// checks anything by hand: the certificate's chain is not checked at all (there is none), only the
/// key it carries, which TLS has proved.
enum SiteTLS {
    /// A self-signed X.509 certificate for `key`, and the key in the form NIOSSL takes.
    static func identity(key: SiteKey, site: SiteID, now: Date = Date()) throws -> (certificate: NIOSSLCertificate, key: NIOSSLPrivateKey) {
        let signing = try Curve25519.Signing.PrivateKey(rawRepresentation: key.rawRepresentation)
        let privateKey = Certificate.PrivateKey(signing)
        let name = try DistinguishedName { CommonName("tierline site \(site.rawValue)") }
        let certificate = try Certificate(
            version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: privateKey.publicKey,
            // A day of slack for clocks behind; validity is not what is checked.
            notValidBefore: now.addingTimeInterval(-86_400), notValidAfter: now.addingTimeInterval(20 * 365 * 86_400),
            issuer: name, subject: name, signatureAlgorithm: .ed25519, extensions: Certificate.Extensions(), issuerPrivateKey: privateKey)
        var serializer = DER.Serializer()
        try serializer.serialize(certificate)
        let nioCertificate = try NIOSSLCertificate(bytes: serializer.serializedBytes, format: .der)
        let pem = try privateKey.serializeAsPEM().pemString
        return (nioCertificate, try NIOSSLPrivateKey(bytes: Array(pem.utf8), format: .pem))
    }

    /// The contexts to accept and dial with: TLS 1.3 only, Ed25519 only, a certificate asked of every
    /// peer, and the peers' certificates judged by ``verify(_:into:)``, never by a CA.
    static func contexts(key: SiteKey, site: SiteID) throws(ConfigurationError) -> TLSContexts {
        do {
            let (certificate, privateKey) = try identity(key: key, site: site)
            func configure(_ base: TLSConfiguration) -> TLSConfiguration {
                var c = base
                c.minimumTLSVersion = .tlsv13
                c.certificateVerification = .noHostnameVerification
                c.signingSignatureAlgorithms = [.ed25519]
                c.verifySignatureAlgorithms = [.ed25519]
                return c
            }
            var client = TLSConfiguration.makeClientConfiguration()
            client.certificateChain = [.certificate(certificate)]
            client.privateKey = .privateKey(privateKey)
            let server = TLSConfiguration.makeServerConfiguration(certificateChain: [.certificate(certificate)], privateKey: .privateKey(privateKey))
            return TLSContexts(server: try NIOSSLContext(configuration: configure(server)),
                               client: try NIOSSLContext(configuration: configure(client)), serverName: nil, siteKeys: true)
        } catch {
            throw ConfigurationError("cannot set up TLS with this site's key: \(error)")
        }
    }

    /// The Ed25519 key a certificate carries, or `nil` for any other kind of key.
    static func ed25519Key(of certificate: NIOSSLCertificate) -> [UInt8]? {
        guard let parsed = try? Certificate(derEncoded: certificate.toDERBytes()),
              let key = Curve25519.Signing.PublicKey(parsed.publicKey) else { return nil }
        return Array(key.rawRepresentation)
    }

    /// Accepts a peer whose certificate carries an Ed25519 key; TLS goes on to prove that the peer holds
    /// the key's private half. Whether the roster lists the key for the peer's site is the session's
    /// decision, once the hello names the site.
    ///
    /// The key is not noted here but read from the certificate the handshake ended with
    /// (``peerKey(in:)``): BoringSSL issues TLS 1.3 session tickets (swift-nio-ssl has no setting to
    /// stop it), and on a resumed session no certificate is sent, so this callback does not run.
    static func verify(_ certificates: [NIOSSLCertificate]) -> NIOSSLVerificationResult {
        guard let leaf = certificates.first, ed25519Key(of: leaf) != nil else { return .failed }
        return .certificateVerified
    }

    /// The Ed25519 key of the peer's certificate once the TLS handshake of `pipeline` has completed.
    ///
    /// A full handshake proved it with the certificate's CertificateVerify; a resumed one carries the
    /// certificate of the handshake that issued its ticket, and proves that the peer is the party of
    /// that handshake (only it holds the session's resumption secret). Either way it is the key the
    /// peer proved, which ``verify(_:)``, not running on a resumption, could not always say.
    static func peerKey(in pipeline: ChannelPipeline.SynchronousOperations) -> [UInt8]? {
        guard let certificate = try? pipeline.nioSSL_peerCertificate() else { return nil }
        return ed25519Key(of: certificate)
    }
}

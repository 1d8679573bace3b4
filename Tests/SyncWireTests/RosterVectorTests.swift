import Foundation
import Testing
import SyncWire
import TicketModel

/// Checks the roster (`Protocol/PROTOCOL.md` §2.6.1) against the `rosters` examples of
/// `Protocol/vectors/frames.json`, written by `Protocol/tools/make_frame_vectors.py` from the spec alone.
/// The roster frames and the hello's `roster` member are among the file's `valid` and `invalid` vectors,
/// which ``FrameVectorTests`` runs.
@Suite struct RosterVectorTests {
    struct Example: Decodable {
        var name: String
        var document: String
        var signature: String
        var pinnedKey: String
        var message: String
        var accepted: Bool
    }

    struct Named: Decodable { var name: String }

    struct File: Decodable {
        var rosters: [Example]
        var valid: [Named]
        var invalid: [Named]
    }

    static func load() throws -> File {
        try JSONDecoder().decode(File.self, from: Data(contentsOf: FrameVectorTests.url))
    }

    @Test func signedRosterAcceptsExactlyTheAcceptedExamples() throws {
        let file = try Self.load()
        #expect(file.rosters.count >= 8)
        #expect(file.rosters.contains { $0.accepted } && file.rosters.contains { !$0.accepted })
        for example in file.rosters {
            #expect(Roster.signedMessage(example.document).hexString == example.message, "\(example.name): roster message")
            let signature = try #require([UInt8](hex: example.signature), "\(example.name)")
            let pinnedKey = try #require([UInt8](hex: example.pinnedKey), "\(example.name)")
            do {
                let signed = try SignedRoster(document: example.document, signature: signature, pinnedKey: pinnedKey)
                #expect(example.accepted, "\(example.name): accepted, but the spec refuses it")
                #expect(signed.document == example.document && signed.signature == signature, "\(example.name)")
            } catch {
                #expect(!example.accepted, "\(example.name): refused (\(error)), but the spec accepts it")
            }
        }
    }

    /// The coordinator writes the document with sorted member names and no white space (§2.6.1): the
    /// example roster is exactly what ``Roster/canonicalText()`` gives for its contents.
    @Test func theValidExampleIsTheCoordinatorsCanonicalText() throws {
        let example = try #require(try Self.load().rosters.first(where: { $0.name == "valid" }))
        let signed = try SignedRoster(document: example.document, signature: try #require([UInt8](hex: example.signature)),
                                      pinnedKey: try #require([UInt8](hex: example.pinnedKey)))
        #expect(signed.roster.canonicalText() == example.document)
        #expect(signed.roster.version == 3 && signed.roster.coordinator == "central")
        #expect(signed.roster.sites.map(\.site) == ["central", "north", "south", "west"])
        #expect(signed.roster.sites.map(\.role) == [.coordinator, .site, .laptop, .site])
        #expect(signed.roster.sites.map(\.revokedAfter) == [nil, nil, nil, 12])
        #expect(signed.roster.released.count == 1)
    }

    /// The frame vectors for the roster are there, so that `FrameVectorTests` runs them.
    @Test func theFrameVectorsCoverTheRoster() throws {
        let file = try Self.load()
        let valid = Set(file.valid.map(\.name)), invalid = Set(file.invalid.map(\.name))
        #expect(valid.isSuperset(of: ["hello-roster", "hello-roster-zero", "roster"]))
        #expect(invalid.isSuperset(of: ["roster-signature-short", "roster-signature-uppercase", "roster-missing-document",
                                        "roster-document-object", "hello-roster-negative", "hello-roster-fraction"]))
    }
}

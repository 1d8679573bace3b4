@testable import Escalation
import Foundation
import TestSupport
import Testing

/// ``EscalationRecord/decode(_:)`` reads canonical bodies without `JSONDecoder` and leaves every
/// other body to it: for every body, the answer is `JSONDecoder`'s.
@Suite struct RecordReadingTests {
    static func reference(_ body: String) -> EscalationRecord? {
        try? JSONDecoder().decode(EscalationRecord.self, from: Data(body.utf8))
    }

    static let texts = ["", "a", "Tier 2 \"ops\"", "back\\slash", "line\nbreak", "tab\t", "bell\u{7}", "caf\u{e9} \u{1F600}", "a/b", "\u{7F}", "{\"x\":1}"]

    static func randomText(_ rng: inout SplitMix) -> String { texts[Int(rng.next() % UInt64(texts.count))] }

    static func randomRecord(_ rng: inout SplitMix) -> EscalationRecord {
        func maybe(_ rng: inout SplitMix) -> Bool { rng.next() % 2 == 0 }
        let type = RecordType.allCases[Int(rng.next() % UInt64(RecordType.allCases.count))]
        let at = [0, 1, -1, 1_780_000_000_000, Int64.max, Int64.min][Int(rng.next() % 6)]
        var record = EscalationRecord(type: type, at: at)
        if maybe(&rng) { record.clock = ClockKind.allCases[Int(rng.next() % 4)] }
        if maybe(&rng) { record.clockCycle = Int(rng.next() % 5) }
        if maybe(&rng) { record.policy = Pin(name: randomText(&rng), version: Int(rng.next() % 100)) }
        if maybe(&rng) { record.calendar = Pin(name: "24x7", version: 1) }
        if maybe(&rng) { record.ladder = Pin(name: randomText(&rng), version: 3) }
        if maybe(&rng) { record.ladderCalendar = Pin(name: "office", version: 2) }
        if maybe(&rng) { record.matrix = Pin(name: "sites", version: 7) }
        if maybe(&rng) { record.cycle = UUID() }
        if maybe(&rng) { record.level = Int(rng.next() % 4) }
        if maybe(&rng) { record.loop = Int(rng.next() % 3) }
        if maybe(&rng) { record.targets = (0..<Int(rng.next() % 3)).map { _ in randomText(&rng) } }
        if maybe(&rng) { record.assignment = [.notify, .transferSite][Int(rng.next() % 2)] }
        if maybe(&rng) { record.fromGroup = randomText(&rng) }
        if maybe(&rng) { record.toGroup = randomText(&rng) }
        if maybe(&rng) { record.toSite = randomText(&rng) }
        if maybe(&rng) { record.refersTo = UUID() }
        if maybe(&rng) { record.reason = randomText(&rng) }
        if maybe(&rng) {
            record.note = HandoffNote(summary: randomText(&rng), verifiedFacts: randomText(&rng), stepsTried: "", requestedAction: randomText(&rng))
        }
        return record
    }

    /// Bodies near `body`: valid JSON that is not canonical, and JSON that is not a record.
    static func alterations(of body: String, _ rng: inout SplitMix) -> [String] {
        var out = [
            " " + body, body + "\n", body.replacingOccurrences(of: ":", with: ": "),
            body.replacingOccurrences(of: "{\"at\"", with: "{\"extra\":null,\"at\""),
            body.replacingOccurrences(of: "{\"at\"", with: "{\"at\":5,\"at\""),
            body.replacingOccurrences(of: ",\"type\"", with: ",\"level\":null,\"type\""),
            body.replacingOccurrences(of: "\"at\":", with: "\"at\":0"),
            body.replacingOccurrences(of: "\"at\":", with: "\"at\":1.0e"),
            body.replacingOccurrences(of: "\"version\":", with: "\"version\":-"),
            body.replacingOccurrences(of: "\"type\":\"", with: "\"type\":\"x"),
            body.replacingOccurrences(of: "\"type\":\"", with: "\"type\":\"\\u0073"),
            body.lowercased(), body.uppercased(),
            String(body.dropLast()), body + "}", "[" + body + "]", "",
        ]
        // Reordered members (still one object, not canonical).
        if let inner = body.dropFirst().dropLast().split(separator: ",", omittingEmptySubsequences: false) as [Substring]?, inner.count > 1 {
            out.append("{" + inner.reversed().joined(separator: ",") + "}")
        }
        // A byte cut out at random.
        if !body.isEmpty {
            var bytes = Array(body.utf8)
            bytes.remove(at: Int(rng.next() % UInt64(bytes.count)))
            out.append(String(decoding: bytes, as: UTF8.self))
        }
        return out
    }

    @Test func decodeAnswersAsJSONDecoderForRandomAndAlteredBodies() {
        var rng = SplitMix(state: 7)
        var canonicalTaken = 0
        for _ in 0..<2_000 {
            let record = Self.randomRecord(&rng)
            let body = record.encoded()
            #expect(EscalationRecord.decode(body) == record, "\(body)")
            // Every body whose strings need no escapes is read without JSONDecoder.
            if !body.contains("\\") {
                #expect(EscalationRecord.decodeCanonical(body) == record, "\(body)")
                canonicalTaken += 1
            }
            for altered in Self.alterations(of: body, &rng) {
                #expect(EscalationRecord.decode(altered) == Self.reference(altered), "\(altered)")
            }
        }
        #expect(canonicalTaken > 50)
    }

    /// Bytes inserted, removed or replaced at random in canonical bodies: wherever the canonical
    /// reader takes the result, JSONDecoder reads the same record from it.
    @Test func bodiesAlteredByteByByteReadAsJSONDecoderReadsThem() {
        var rng = SplitMix(state: 11)
        let alphabet: [UInt8] = [0x00, 0x0A, 0x1F, 0x20, 0x22, 0x2C, 0x2D, 0x2E, 0x30, 0x31, 0x3A, 0x45, 0x4B, 0x5C, 0x65, 0x7B, 0x7D, 0x7F]
            + Array("é".utf8) + Array("\u{2028}".utf8)
        var taken = 0
        for _ in 0..<20_000 {
            var bytes = Array(Self.randomRecord(&rng).encoded().utf8)
            let at = Int(rng.next() % UInt64(bytes.count))
            let byte = alphabet[Int(rng.next() % UInt64(alphabet.count))]
            switch rng.next() % 3 {
            case 0: bytes.insert(byte, at: at)
            case 1: bytes.remove(at: at)
            default: bytes[at] = byte
            }
            let body = String(decoding: bytes, as: UTF8.self)
            if let record = EscalationRecord.decodeCanonical(body) {
                taken += 1
                #expect(record == Self.reference(body), "\(body.debugDescription)")
            }
        }
        #expect(taken > 100, "some altered bodies are still canonical (a changed digit or letter)")
    }

    @Test func theCanonicalReaderTakesOnlyBodiesItReadsExactly() {
        let record = EscalationRecord(type: .levelFired, at: 1_780_000_000_000)
        #expect(EscalationRecord.decodeCanonical(record.encoded()) == record)
        // Taken, and read as JSONDecoder reads them: minus zero, a lowercase id, DEL and U+2028 raw.
        for body in ["{\"at\":-0,\"type\":\"sla_breach\"}", "{\"at\":1,\"cycle\":\"\(UUID().uuidString.lowercased())\",\"type\":\"sla_breach\"}",
                     "{\"at\":1,\"reason\":\"a\u{7F}\u{2028}b\",\"type\":\"sla_breach\"}"] {
            #expect(EscalationRecord.decodeCanonical(body) != nil, "\(body)")
            #expect(EscalationRecord.decodeCanonical(body) == Self.reference(body), "\(body)")
        }
        for body in ["{\"at\":1,\"type\":\"sla_breach\"} ", "{\"at\":01,\"type\":\"sla_breach\"}", "{\"at\":1,\"reason\":\"a\\nb\",\"type\":\"sla_breach\"}",
                     "{\"at\":1,\"level\":null,\"type\":\"sla_breach\"}", "{\"at\":1,\"type\":\"sla_breach\",\"type\":\"sla_warning\"}",
                     "{\"at\":1e3,\"type\":\"sla_breach\"}", "{\"at\":9223372036854775808,\"type\":\"sla_breach\"}",
                     "{\"at\":1,\"type\":\"sla_breach\",\"future\":1}", "{\"at\":1}",
                     // Raw control characters in a string: JSON forbids them, so JSONDecoder refuses.
                     "{\"at\":1,\"reason\":\"a\u{0}b\",\"type\":\"sla_breach\"}", "{\"at\":1,\"reason\":\"a\nb\",\"type\":\"sla_breach\"}",
                     "{\"at\":1,\"reason\":\"a\u{1F}b\",\"type\":\"sla_breach\"}"] {
            #expect(EscalationRecord.decodeCanonical(body) == nil, "\(body)")
            #expect(EscalationRecord.decode(body) == Self.reference(body), "\(body)")
        }
    }
}

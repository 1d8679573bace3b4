import SyncWire
import Testing

/// Member names are compared as the decoder reads them, escapes undone, and lone surrogates are
/// refused (PROTOCOL.md §2.1); found by reading the scanner while fuzzing it.
@Suite struct StrictJSONTests {
    func code(_ line: String) -> String? {
        do {
            _ = try Frame.decode(line: Array(line.utf8))
            return nil
        } catch {
            return error.code.rawValue
        }
    }

    @Test func escapedMemberNamesAreTheNamesTheyEscape() {
        #expect(code(#"{"type":"ping","id":1,"t\u0069me":1e3}"#) == "bad-field")
        #expect(code(#"{"type":"ping","id":1,"t\u0069me":-0}"#) == "bad-field")
        #expect(code(#"{"type":"ping","id":1,"time":5,"t\u0069me":7}"#) == "bad-json")
        #expect(code(#"{"typ\u0065":"ping","type":"pong","id":1,"time":2}"#) == "bad-json")
        #expect(code(#"{"type":"ping","id":1,"t\u0069me":7}"#) == nil)
    }

    @Test func loneSurrogatesAreRefusedAndPairsAccepted() {
        #expect(code(#"{"type":"bye","reason":"\ud800"}"#) == "bad-json")
        #expect(code(#"{"type":"bye","reason":"\udc00x"}"#) == "bad-json")
        #expect(code(#"{"type":"bye","reason":"\ud800\u0041"}"#) == "bad-json")
        #expect(code(#"{"type":"bye","reason":"\ud83d\ude00 fine"}"#) == nil)
    }
}

import SyncWire
import Testing

/// The error decoding `line` gives, or `nil` when it is a frame.
func decodingError(_ line: String) -> WireError? {
    do {
        _ = try Frame.decode(line: Array(line.utf8))
        return nil
    } catch {
        return error
    }
}

/// Member names are compared as the decoder reads them, escapes undone, and lone surrogates are
/// refused (PROTOCOL.md §2.1); found by reading the wire's former scanner while fuzzing it.
@Suite struct StrictJSONTests {
    func code(_ line: String) -> String? { decodingError(line)?.code.rawValue }

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

/// The members' types of §2.1, read from the parsed line at any depth; members a frame does not
/// define are ignored whatever they hold.
@Suite struct FrameMemberTypeTests {
    func detail(_ line: String) -> WireError? { decodingError(line) }

    @Test(arguments: [
        (#"{"type":"vector","vector":{"north":1.5}}"#, "bad-field"),
        (#"{"type":"vector","vector":{"north":null}}"#, "bad-field"),
        (#"{"type":"vector","vector":{"north":1},"heads":{"north":{"seq":1}}}"#, "bad-field"),
        (#"{"type":"vector","vector":{"north":1},"heads":{"north":[]}}"#, "bad-field"),
        (#"{"type":"synced","vector":{},"awaiting":"north"}"#, "bad-field"),
        (#"{"type":"synced","vector":{},"awaiting":[1]}"#, "bad-field"),
        (#"{"type":"blocks","batch":1,"count":1,"size":1,"keys":{"north":7},"data":"AAAA"}"#, "bad-field"),
        (#"{"type":"bye","reason":null}"#, "bad-field"),
        (#"{"type":"error","code":"x","message":"m","fatal":1}"#, "bad-field"),
        (#"{"type":"ping","id":1,"time":5,"later":[1.5,null,{"a":-0}]}"#, nil),
        (#"{"type":"vector","vector":{"north":1,"north":1}}"#, "bad-json"),
    ] as [(String, String?)])
    func membersAreTypedAtEveryDepth(line: String, expected: String?) {
        #expect(detail(line)?.code.rawValue == expected, "\(String(describing: detail(line)))")
    }

    @Test func aSyntaxErrorNamesItsByte() {
        #expect(detail(#"{"type":"ping","id":01}"#)?.detail.hasSuffix("at byte 20") == true, "\(String(describing: detail(#"{"type":"ping","id":01}"#)))")
    }
}

/// A line's tree is bounded by the number of values, not only by its bytes (PROTOCOL §2.1): `[0,0,…]`
/// is two bytes a value, so a stranger's 2 MiB prelude line could otherwise build a tree of tens of
/// megabytes.
@Suite struct FrameValueBudgetTests {
    @Test func aLineWithMoreThan65536ValuesIsBadJSON() {
        let zeros = Array(repeating: "0", count: 70_000).joined(separator: ",")
        let line = Array(#"{"type":"ping","id":1,"time":1,"pad":[\#(zeros)]}"#.utf8)
        do {
            _ = try Frame.decode(line: line)
            Issue.record("a line of 70,000 values was read")
        } catch {
            #expect(error.code == .badJSON)
            #expect(error.description.contains("more than 65536 values"), "\(error)")
        }
    }

    @Test func aLineUnderTheBudgetIsRead() throws {
        let zeros = Array(repeating: "0", count: 60_000).joined(separator: ",")
        let line = Array(#"{"type":"ping","id":1,"time":1,"pad":[\#(zeros)]}"#.utf8)
        guard case .ping = try Frame.decode(line: line) else { Issue.record("not a ping"); return }
    }
}

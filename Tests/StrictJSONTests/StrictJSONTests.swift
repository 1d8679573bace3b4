import StrictJSON
import Testing

@Suite struct StrictJSONTests {
    func problem(_ text: String) -> StrictJSON.Problem? {
        do { _ = try StrictJSON.parse(Array(text.utf8)); return nil } catch { return error }
    }

    @Test func aDocumentParsesWithPositions() throws {
        let node = try StrictJSON.parse(Array(#"{"a": [1, -2.5e3, "x\u00e9\n", true, null], "b": {"c": false}}"#.utf8))
        #expect(node["a"]?.value == .array([
            .init(value: .number("1"), position: .init(line: 1, column: 8)),
            .init(value: .number("-2.5e3"), position: .init(line: 1, column: 11)),
            .init(value: .string("x\u{e9}\n"), position: .init(line: 1, column: 19)),
            .init(value: .bool(true), position: .init(line: 1, column: 32)),
            .init(value: .null, position: .init(line: 1, column: 38)),
        ]))
        #expect(node["b"]?["c"]?.value == .bool(false))
        #expect(try StrictJSON.parse(Array(#""\ud83d\ude00""#.utf8)).value == .string("😀"))
    }

    @Test(arguments: [
        ("{\n  \"listen\": \"0.0.0.0:7400\",\n}", 3, 1, "trailing comma"),
        ("{\"a\": 1, \"a\": 2}", 1, 10, "appears twice"),
        ("[1, 2,]", 1, 7, "trailing comma"),
        ("{\n  \"a\": 1\n  \"b\": 2\n}", 3, 3, "a comma or \"}\""),
        ("{\"a\": 'x'}", 1, 7, "double quotes"),
        ("{\"a\": 07}", 1, 7, "may not start with 0"),
        ("{\"a\": True}", 1, 7, "lower case"),
        ("{\"a\": \"\\ud800\"}", 1, 14, "lone surrogate"),
        ("{\"a\": \"tab\there\"}", 1, 11, "control character"),
        ("{} {}", 1, 4, "text after"),
        ("\u{FEFF}{}", 1, 1, "byte order mark"),
        ("// hi\n{}", 1, 1, "no comments"),
        ("{\"a\": \"\\u+123\"}", 1, 10, "four hex digits"),
        ("", 1, 1, "empty"),
    ])
    func malformedDocumentsNameTheirLineAndColumn(text: String, line: Int, column: Int, says: String) {
        let found = problem(text)
        #expect(found?.position == StrictJSON.Position(line: line, column: column), "\(String(describing: found))")
        #expect(found?.message.contains(says) == true, "\(String(describing: found))")
    }

    /// A member name with terminal escapes reaches messages and paths escaped, never raw.
    @Test func hostileMemberNamesArePrintedEscaped() throws {
        let text = "{\"\\u001b[2J\": 1, \"\\u001b[2J\": 2}"
        let found = try #require(problem(text))
        #expect(!found.description.contains("\u{1b}"), "\(found)")
        #expect(found.path == "\\u{1b}[2J")
        let node = try StrictJSON.parse(Array("{\"x\\u0007\": 1}".utf8))
        let unknown = StrictJSON.unknownMembers(in: node, known: ["": ["x"]])
        #expect(unknown.count == 1 && !unknown[0].description.contains("\u{7}"))
    }

    @Test func everyUnknownMemberIsReportedWithADidYouMean() throws {
        let node = try StrictJSON.parse(Array("{\n \"peer\": [],\n \"lisen\": \"x\",\n \"tls\": {\"cafile\": \"x\", \"zzz\": 1},\n \"listen\": \"y\"\n}".utf8))
        let problems = StrictJSON.unknownMembers(in: node, known: ["": ["peers", "listen", "tls"], "tls": ["caFile", "keyFile"]])
        #expect(problems.map(\.path) == ["peer", "lisen", "tls.cafile", "tls.zzz"])
        #expect(problems[0].message.hasPrefix("unknown setting \"peer\"; did you mean \"peers\"?"))
        #expect(problems[1].message.contains("did you mean \"listen\"?"))
        #expect(problems[1].position == StrictJSON.Position(line: 3, column: 11))
        #expect(problems[2].message.contains("did you mean \"caFile\"?"))
        #expect(!problems[3].message.contains("did you mean"))
    }
}

/// What the wire reads through the parser: integers from the number's text, and strings with and
/// without escapes (the plain ones are taken in one piece).
@Suite struct StrictJSONValueTests {
    @Test(arguments: [
        ("0", 0 as Int64?), ("42", 42), ("-7", -7), ("9223372036854775807", .max), ("-9223372036854775808", .min),
        ("9223372036854775808", nil), ("-0", nil), ("1.0", nil), ("1e3", nil), ("1E0", nil), ("\"1\"", nil), ("true", nil), ("null", nil),
    ])
    func integersAreReadExactlyFromTheirText(text: String, expected: Int64?) throws {
        #expect(try StrictJSON.parse(Array(text.utf8)).value.integer == expected)
    }

    @Test func plainAndEscapedStringsReadTheSame() throws {
        let long = String(repeating: "QUJD", count: 50_000)
        #expect(try StrictJSON.parse(Array("\"\(long)\"".utf8)).value == .string(long))
        #expect(try StrictJSON.parse(Array(#""plain then \"escaped\" then \u00e9 plain""#.utf8)).value == .string("plain then \"escaped\" then é plain"))
        #expect(try StrictJSON.parse(Array(#""""#.utf8)).value == .string(""))
    }

    @Test func invalidUTF8InAPlainStringIsRefused() {
        for bytes: [UInt8] in [[0x22, 0x61, 0xFF, 0x22], [0x22, 0xC0, 0xAE, 0x22], [0x22, 0x61, 0xFF, 0x5C, 0x6E, 0x22]] {
            #expect(throws: StrictJSON.Problem.self) { try StrictJSON.parse(bytes) }
        }
    }
}

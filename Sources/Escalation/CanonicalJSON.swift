import Foundation

/// The encoding of record and configuration bodies (PROTOCOL.md §3): sorted keys, no whitespace,
/// `/` not escaped, absent members left out, so equal values are equal bytes.
public enum CanonicalJSON {
    private static let encoder: JSONEncoder = {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return e
    }()

    /// Encoding these documents (strings, integers, arrays and objects of them) cannot fail.
    public static func string(_ value: some Encodable) -> String {
        String(decoding: (try? encoder.encode(value)) ?? Data(), as: UTF8.self)
    }
}

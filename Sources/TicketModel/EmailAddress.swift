/// The one rule for an e-mail address this system can send to, shared by the agent directory
/// (`agent add --email`), `tierline notify test --email` and the mail sender, so an address one of
/// them accepts is never refused by another (a notice to it would go to the dead letters).
///
/// A plain `local@domain`: the local part a dot-atom (RFC 5321 §4.1.2) of ASCII letters, digits and
/// ``localCharacters`` (no leading, trailing or doubled dot; no quoted strings, comments or
/// non-ASCII); the domain ASCII labels of letters, digits and inner hyphens, 1 to 63 each, joined by
/// dots; the whole at most 254 bytes.
///
/// ```swift
/// EmailAddress.isValid("anna.berg+desk@example.org")   // true
/// EmailAddress.isValid("x(y)@example.org")             // false
/// ```
public enum EmailAddress {
    /// The characters besides letters and digits a local part may hold.
    public static let localCharacters: Set<UInt8> = Set("!#$%&'*+/=?^_`{|}~.-".utf8)

    /// Whether `text` is an address this system sends to.
    public static func isValid(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        guard bytes.count <= 254, let at = bytes.firstIndex(of: UInt8(ascii: "@")) else { return false }
        let local = bytes[..<at], domain = bytes[(at + 1)...]
        func isAlphanumeric(_ b: UInt8) -> Bool {
            (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(b) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(b)
                || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(b)
        }
        guard (1...64).contains(local.count), local.first != UInt8(ascii: "."), local.last != UInt8(ascii: "."),
              local.allSatisfy({ isAlphanumeric($0) || localCharacters.contains($0) }),
              !zip(local, local.dropFirst()).contains(where: { $0 == UInt8(ascii: ".") && $1 == UInt8(ascii: ".") }) else { return false }
        let labels = domain.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
        return !domain.isEmpty && labels.allSatisfy { label in
            (1...63).contains(label.count) && label.first != UInt8(ascii: "-") && label.last != UInt8(ascii: "-")
                && label.allSatisfy { isAlphanumeric($0) || $0 == UInt8(ascii: "-") }
        }
    }
}

/// An error with a stable code from a closed set and a detail that says what was wrong in words.
///
/// The pure core's error types are this one shape over their own code enum, so each reads
/// `code: detail` and matches on its code the same way:
///
/// ```swift
/// throw CodecError(.truncated, "a varint runs past the end")
/// catch let error as CodecError where error.code == .truncated { … }
/// ```
public struct CodedError<Codes>: Error, Hashable, Sendable, CustomStringConvertible
where Codes: RawRepresentable & Hashable & Sendable, Codes.RawValue == String {
    /// The set of codes, so `CodecError.Code.truncated` names one.
    public typealias Code = Codes

    public var code: Code
    public var detail: String

    public init(_ code: Code, _ detail: String) {
        self.code = code
        self.detail = detail
    }

    /// `code: detail`, the code by its stable raw value.
    public var description: String { "\(code.rawValue): \(detail)" }
}

/// One problem found in a configuration document: where it is and what is wrong with it.
///
/// `file` is set by the reader of a file; `path` names the key, e.g. `calendars[0].weekly.mon[1]`.
public struct ConfigIssue: Error, Sendable, Hashable, CustomStringConvertible {
    public var file: String?
    public var path: String
    public var message: String

    public init(file: String? = nil, path: String, _ message: String) {
        self.file = file
        self.path = path
        self.message = message
    }

    public var description: String {
        let place = [file, path.isEmpty ? nil : path].compactMap { $0 }.joined(separator: ": ")
        return place.isEmpty ? message : "\(place): \(message)"
    }
}

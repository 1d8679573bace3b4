import Foundation

/// The file a copy of the store (an export, a backup) is written to before it is renamed to its
/// destination: a new name beside it (`FILE.partial-XXXXXX`, so the rename stays on one file
/// system), created exclusively by `mkstemp(3)`, so no file already there (an earlier run's
/// leftover, anyone's file of a similar name) is ever replaced or removed. It is made readable by
/// its owner only (0600), which the copy keeps: it holds every ticket of the fleet.
enum PartialFile {
    /// Creates the file and returns its path and an open descriptor the caller owns.
    static func create(beside destination: String) throws -> (path: String, descriptor: Int32) {
        var template = Array((destination + ".partial-XXXXXX").utf8CString)
        let descriptor = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard descriptor >= 0 else {
            throw StoreError(.refusedWrite, "cannot write \(destination) (\(String(cString: strerror(errno)))); check the folder exists and is writable")
        }
        return (String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self), descriptor)
    }
}

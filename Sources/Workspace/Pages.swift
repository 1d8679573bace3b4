import Desk
import Escalation
import Foundation
import HTTPTypes
import Hummingbird
import Mustache
import NIOCore

/// The workspace's templates, compiled into the binary (no files to install beside it). Every
/// value is inserted with `{{…}}`, which escapes HTML; no template uses the unescaped forms.
enum Templates {
    static let all: [String: String] = ["layout": layout, "login": login, "error": error, "queue": queue, "ticket": ticket]
}

/// Renders the workspace's pages for one node.
struct Pages: Sendable {
    /// This node's site name, shown in every page's header.
    let site: String

    /// The templates, parsed once. A template that does not parse is a programming error caught by
    /// the tests, which render every page.
    static let library: MustacheLibrary = {
        var library = MustacheLibrary()
        for (name, text) in Templates.all {
            do { try library.register(text, named: name) } catch { preconditionFailure("template \(name) does not parse: \(error)") }
        }
        return library
    }()

    /// The values every page's frame reads: the site, the live version, and the agent signed in (if any).
    func frame(_ agent: SignedIn?) -> [String: Any] {
        var values: [String: Any] = ["site": site]
        // The change feed's version as the request began (the live script compares it with /api/events).
        if let version = LivePage.version { values["liveVersion"] = String(version) }
        if let agent {
            var csrf = ""
            if case .session(let token) = agent.proof { csrf = token }
            values["csrf"] = csrf
            values["agent"] = [
                "csrf": csrf, "displayName": agent.agent.displayName, "role": agent.agent.role.rawValue,
                "mayDashboard": agent.may(.dashboard), "timeZone": agent.timeZone ?? "",
            ] as [String: Any]
        }
        return values
    }

    /// `template` rendered with the frame's values and `values`, as an HTML response.
    func render(_ template: String, agent: SignedIn?, status: HTTPResponse.Status = .ok, _ values: [String: Any] = [:]) -> Response {
        var context = frame(agent)
        for (key, value) in values { context[key] = value }
        let html = Self.library.render(Self.clean(context), withTemplate: template) ?? "template \(template) is missing"
        return htmlResponse(html, status: status)
    }

    /// `value` with every text made safe for the templates' escaping: swift-mustache escapes `<`, `>`,
    /// `&`, `"` and `'` per Character, so a quote followed by a combining mark (one Character, `"\u{301}`)
    /// would pass unescaped and end an attribute. Such a Character is cut down to its ASCII mark; control
    /// characters other than line breaks and tabs are dropped.
    static func clean(_ value: Any) -> Any {
        switch value {
        case let text as String: return cleanText(text)
        case let dictionary as [String: Any]: return dictionary.mapValues(clean)
        case let array as [Any]: return array.map(clean)
        case let array as [String]: return array.map(cleanText)
        case let array as [[String: Any]]: return array.map { $0.mapValues(clean) }
        default: return value
        }
    }

    static func cleanText(_ text: String) -> String {
        let special: Set<Unicode.Scalar> = ["<", ">", "&", "\"", "'"]
        var out = String.UnicodeScalarView()
        for character in text {
            let scalars = character.unicodeScalars
            if scalars.count > 1, let mark = scalars.first(where: special.contains) {
                out.append(mark)
                continue
            }
            for scalar in scalars where scalar.properties.generalCategory != .control || scalar == "\n" || scalar == "\t" {
                out.append(scalar)
            }
        }
        return String(out)
    }

    func errorPage(_ error: WorkspaceError, agent: SignedIn?) -> Response {
        render("error", agent: agent, status: error.status,
               ["status": "\(error.status.code) \(error.status.reasonPhrase)", "message": error.field.map { "\($0): \(error.message)" } ?? error.message])
    }
}

func htmlResponse(_ html: String, status: HTTPResponse.Status = .ok) -> Response {
    var headers = HTTPFields()
    headers[.contentType] = "text/html; charset=utf-8"
    return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: html)))
}

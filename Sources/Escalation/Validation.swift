import Foundation
import StrictJSON
import TicketModel

/// Reading and checking configuration files before anything of them is published.
public enum ConfigReader {
    /// Decodes a bundle file and checks it against itself and the versions already published.
    ///
    /// Once agents are published (in the file or before), a ladder's `group@site` and `role:` targets
    /// must name someone in the directory, unless `allowUnknownTargets`.
    /// - Returns: the documents to publish (versions already published with the same content are left
    ///   out).
    /// - Throws: every problem found, each naming the file, the key and what is wrong.
    public static func read(_ data: Data, file: String, published: ConfigLibrary,
                            allowUnknownTargets: Bool = false) throws(ConfigErrors) -> [ConfigDocument] {
        // Syntax first, strictly: a repeated key or a trailing comma is refused with its line and
        // column (Foundation would keep the last of two keys and accept the comma).
        let root: StrictJSON.Node
        do { root = try StrictJSON.parse(data) } catch {
            throw ConfigErrors([ConfigIssue(file: file, path: error.path, "not valid JSON at \(error.position): \(error.message)")])
        }
        guard case .object(let members) = root.value else {
            throw ConfigErrors([ConfigIssue(file: file, path: "", "the file must be one JSON object; give calendars, policies, ladders, matrix, rules or agents")])
        }
        // Each document is decoded on its own, so one broken document does not hide the problems
        // of the others: every problem of the file is reported at once.
        var reading = BundleReading()
        var bundle = ConfigBundle()
        for member in members {
            switch member.name {
            case "calendars": bundle.calendars = reading.list(member.value, path: member.name)
            case "policies": bundle.policies = reading.list(member.value, path: member.name)
            case "ladders": bundle.ladders = reading.list(member.value, path: member.name)
            case "rules": bundle.rules = reading.list(member.value, path: member.name)
            case "agents": bundle.agents = reading.list(member.value, path: member.name)
            case "matrix": bundle.matrix = reading.one(member.value, path: member.name)
            default:
                let known: Set = ["calendars", "policies", "ladders", "matrix", "rules", "agents"]
                let hint = StrictJSON.nearest(member.name, in: known).map { "; did you mean \"\($0)\"?" } ?? ""
                reading.issues.append(ConfigIssue(path: StrictJSON.printable(member.name), "unknown key\(hint)"))
            }
        }
        // Values and references are checked over the documents that could be read, and each problem
        // is placed at its document's index in the file. A reference to a document that could not be
        // read is left out: that document's own problem is the one to fix.
        var checker = Checker(bundle: bundle, published: published)
        checker.allowUnknownTargets = allowUnknownTargets
        checker.check()
        var issues = reading.issues + checker.issues.map(reading.placed).filter { issue in
            !reading.unreadable.contains { issue.message.hasPrefix($0) }
        }
        if bundle.documents.isEmpty && issues.isEmpty {
            issues.append(ConfigIssue(path: "", "the file holds no documents; give calendars, policies, ladders, matrix, rules or agents"))
        }
        guard issues.isEmpty else { throw ConfigErrors(issues.map { ConfigIssue(file: file, path: $0.path, $0.message) }) }
        return bundle.documents.filter { published.document($0.kind, $0.name, version: $0.version) != $0 }
    }

    /// Reads the documents of one file, each alone, keeping every problem.
    struct BundleReading {
        var issues: [ConfigIssue] = []
        /// How the checks name a reference to each document that could not be decoded
        /// (`no calendar named "std"`): those references are not problems of their own.
        var unreadable: Set<String> = []
        /// For each list, the index in the file of each document that could be decoded.
        var positions: [String: [Int]] = [:]

        mutating func list<T: Codable>(_ node: StrictJSON.Node, path: String) -> [T]? {
            guard case .array(let elements) = node.value else {
                issues.append(ConfigIssue(path: path, "expected a list"))
                return nil
            }
            var read: [T] = []
            for (index, element) in elements.enumerated() {
                guard let value: T = one(element, path: "\(path)[\(index)]") else { continue }
                read.append(value)
                positions[path, default: []].append(index)
            }
            return read
        }

        /// `issue` of the checks, which count only the documents that could be decoded, at its
        /// document's index in the file (`policies[0]` is the file's `policies[1]` when the first
        /// could not be decoded).
        func placed(_ issue: ConfigIssue) -> ConfigIssue {
            let path = issue.path
            guard let open = path.firstIndex(of: "["), let close = path[open...].firstIndex(of: "]"),
                  let index = Int(path[path.index(after: open)..<close]),
                  let inFile = positions[String(path[..<open])], index < inFile.count else { return issue }
            return ConfigIssue(path: "\(path[..<open])[\(inFile[index])]\(path[path.index(after: close)...])", issue.message)
        }

        mutating func one<T: Codable>(_ node: StrictJSON.Node, path: String) -> T? {
            func within(_ inner: String) -> String { inner.isEmpty ? path : inner.hasPrefix("[") ? path + inner : "\(path).\(inner)" }
            do {
                let value = try JSONDecoder().decode(T.self, from: Data(node.json))
                issues += try unknownKeys(node, known: StrictJSON.parse(JSONEncoder().encode(value)), path: path)
                return value
            } catch let error as DecodingError {
                noteUnreadable(node, path: path)
                let found = ConfigReader.issue(error, file: "")
                issues.append(ConfigIssue(path: within(found.path), found.message))
                issues += misspelt(error, node).map { ConfigIssue(path: within($0.path), $0.message) }
            } catch let error as ConfigIssue {
                noteUnreadable(node, path: path)
                issues.append(ConfigIssue(path: within(error.path), error.message))
            } catch {
                issues.append(ConfigIssue(path: path, "\(error)"))
            }
            return nil
        }

        /// Remembers how a reference to the document at `path` reads, if it has a name.
        mutating func noteUnreadable(_ node: StrictJSON.Node, path: String) {
            let kinds = ["calendars": "calendar", "policies": "policy", "ladders": "ladder", "rules": "rule", "agents": "agent"]
            guard case .string(let name)? = node["name"]?.value,
                  let kind = kinds[String(path.prefix { $0 != "[" })] else { return }
            unreadable.insert("no \(kind) named \"\(name)\"")
        }
    }

    static func issue(_ error: DecodingError, file: String) -> ConfigIssue {
        func path(_ keys: [any CodingKey]) -> String {
            keys.reduce(into: "") { out, key in
                if let i = key.intValue { out += "[\(i)]" } else { out += out.isEmpty ? key.stringValue : ".\(key.stringValue)" }
            }
        }
        switch error {
        case .keyNotFound(let key, let context):
            return ConfigIssue(file: file, path: path(context.codingPath + [key]), "required key is missing")
        case .typeMismatch(let type, let context):
            return ConfigIssue(file: file, path: path(context.codingPath), "expected \(describe(type))")
        case .valueNotFound(let type, let context):
            return ConfigIssue(file: file, path: path(context.codingPath), "expected \(describe(type)), found null")
        case .dataCorrupted(let context):
            if let issue = context.underlyingError as? ConfigIssue {
                return ConfigIssue(file: file, path: issue.path.isEmpty ? path(context.codingPath) : issue.path, issue.message)
            }
            return ConfigIssue(file: file, path: path(context.codingPath), context.debugDescription)
        @unknown default:
            return ConfigIssue(file: file, path: "", "\(error)")
        }
    }

    /// When a required key is missing, a key beside it that is spelt almost the same is most likely
    /// the culprit: name it too. Paths are relative to `document`.
    static func misspelt(_ error: DecodingError, _ document: StrictJSON.Node) -> [ConfigIssue] {
        guard case .keyNotFound(let key, let context) = error else { return [] }
        var node = document
        var path = ""
        for step in context.codingPath {
            if let i = step.intValue, case .array(let list) = node.value, i < list.count {
                node = list[i]
                path += "[\(i)]"
            } else if let next = node[step.stringValue] {
                node = next
                path += path.isEmpty ? step.stringValue : ".\(step.stringValue)"
            } else {
                return []
            }
        }
        guard case .object(let members) = node.value else { return [] }
        return members.map(\.name).sorted().filter { $0 != key.stringValue && distance($0, key.stringValue) <= 2 }.map {
            ConfigIssue(path: path.isEmpty ? $0 : "\(path).\($0)", "unknown key; did you mean \"\(key.stringValue)\"?")
        }
    }

    /// Levenshtein distance between two short keys.
    static func distance(_ a: String, _ b: String) -> Int { StrictJSON.distance(a, b) }

    private static func describe(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: "a string"
        case is Int.Type: "an integer"
        case is Bool.Type: "true or false"
        default: type is any Collection.Type ? "a list" : "an object"
        }
    }

    /// Keys of a document that its decoded form does not hold: typos and unsupported options.
    static func unknownKeys(_ original: StrictJSON.Node, known: StrictJSON.Node, path: String) -> [ConfigIssue] {
        var out: [ConfigIssue] = []
        func walk(_ a: StrictJSON.Node, _ b: StrictJSON.Node, _ path: String) {
            switch (a.value, b.value) {
            case (.object(let members), .object):
                for member in members.sorted(by: { $0.name < $1.name }) {
                    let here = path.isEmpty ? StrictJSON.printable(member.name) : "\(path).\(StrictJSON.printable(member.name))"
                    if let sub = b[member.name] {
                        walk(member.value, sub, here)
                    } else if member.value.value == .null {
                        out.append(ConfigIssue(path: here, "null is not a value here; leave the key out"))
                    } else {
                        out.append(ConfigIssue(path: here, "unknown key"))
                    }
                }
            case (.array(let left), .array(let right)):
                for (i, pair) in zip(left, right).enumerated() { walk(pair.0, pair.1, "\(path)[\(i)]") }
            default:
                break
            }
        }
        walk(original, known, path)
        return out
    }
}

/// Every problem of a configuration file.
public struct ConfigErrors: Error, Sendable, CustomStringConvertible {
    public var issues: [ConfigIssue]
    public init(_ issues: [ConfigIssue]) { self.issues = issues }
    public var description: String { issues.map(\.description).joined(separator: "\n") }
}

/// The semantic checks of a bundle: values, references and versions.
private struct Checker {
    let bundle: ConfigBundle
    let published: ConfigLibrary
    var issues: [ConfigIssue] = []
    var allowUnknownTargets = false
    /// The agents as they will stand once the file is published: published ones, replaced by the
    /// file's versions.
    let directory: AgentDirectory

    init(bundle: ConfigBundle, published: ConfigLibrary) {
        self.bundle = bundle
        self.published = published
        let fromFile = Dictionary((bundle.agents ?? []).map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        directory = AgentDirectory(published.agents.filter { fromFile[$0.name] == nil } + fromFile.values)
    }

    static var namePattern: Regex<Substring> { #/[a-z0-9][a-z0-9_-]{0,63}/# }
    static var agentPattern: Regex<Substring> { #/[a-z0-9][a-z0-9._-]{0,63}/# }
    static var sitePattern: Regex<Substring> { #/[a-z][a-z0-9-]{0,31}/# }

    mutating func fail(_ path: String, _ message: String) { issues.append(ConfigIssue(path: path, message)) }

    func exists(_ kind: ConfigDocument.Kind, _ name: String) -> Bool {
        bundle.documents.contains { $0.kind == kind && $0.name == name } || published.latest(kind, name) != nil
    }

    mutating func check() {
        for (i, calendar) in (bundle.calendars ?? []).enumerated() {
            do { _ = try WorkingCalendar(document: calendar) } catch {
                fail("calendars[\(i)]" + (error.path.isEmpty ? "" : ".\(error.path)"), error.message)
            }
        }
        for (i, p) in (bundle.policies ?? []).enumerated() { checkPolicy(p, "policies[\(i)]") }
        for (i, l) in (bundle.ladders ?? []).enumerated() { checkLadder(l, "ladders[\(i)]") }
        if let m = bundle.matrix { checkMatrix(m, "matrix") }
        for (i, r) in (bundle.rules ?? []).enumerated() {
            checkName(r.name, "rules[\(i)].name")
            checkMatch(r.match, "rules[\(i)].match")
            if !exists(.ladder, r.ladder) { fail("rules[\(i)].ladder", "no ladder named \"\(r.ladder)\" in this file or published") }
        }
        for (i, a) in (bundle.agents ?? []).enumerated() { checkAgent(a, "agents[\(i)]") }
        checkVersions()
    }

    mutating func checkName(_ name: String, _ path: String) {
        if (try? Self.namePattern.wholeMatch(in: name)) == nil {
            fail(path, "\"\(name)\" is not a name; use 1-64 of a-z, 0-9, _ and -, starting with a letter or digit")
        }
    }

    mutating func checkStatuses(_ statuses: [String]?, _ path: String) {
        for (i, s) in (statuses ?? []).enumerated() where Status(rawValue: s) == nil || Status(rawValue: s)!.isResolved {
            fail("\(path)[\(i)]", "\"\(s)\" is not a status that can pause a clock; use new, open, pending_customer, pending_third_party or on_hold")
        }
    }

    mutating func checkDuration(_ text: String, _ path: String, allowZero: Bool) {
        guard let ms = DurationText.millis(text) else {
            return fail(path, "\"\(text)\" is not a duration; write e.g. 90s, 30m, 2h, 1h30m or 3d")
        }
        if ms == 0 && !allowZero { fail(path, "must be longer than 0") }
    }

    mutating func checkCalendarRef(_ name: String, _ path: String) {
        if name != WorkingCalendar.always.name && !exists(.calendar, name) {
            fail(path, "no calendar named \"\(name)\" in this file or published; name one, or use 24x7")
        }
    }

    mutating func checkMatch(_ match: MatchDocument?, _ path: String) {
        for (i, p) in (match?.priority ?? []).enumerated() where Priority(rawValue: p) == nil {
            fail("\(path).priority[\(i)]", "\"\(p)\" is not a priority; use low, normal, high or urgent")
        }
        for (i, s) in (match?.site ?? []).enumerated() where (try? Self.sitePattern.wholeMatch(in: s)) == nil {
            fail("\(path).site[\(i)]", "\"\(s)\" is not a site id")
        }
    }

    mutating func checkPolicy(_ p: PolicyDocument, _ path: String) {
        checkName(p.name, "\(path).name")
        checkMatch(p.match, "\(path).match")
        checkCalendarRef(p.calendar, "\(path).calendar")
        if let ladder = p.ladder, !exists(.ladder, ladder) { fail("\(path).ladder", "no ladder named \"\(ladder)\" in this file or published") }
        var any = false
        for kind in ClockKind.allCases {
            guard let clock = p.clocks[kind] else { continue }
            any = true
            let here = "\(path).clocks.\(kind.rawValue)"
            if clock.targets.isEmpty { fail("\(here).targets", "give a target for at least one priority") }
            for (priority, duration) in clock.targets.sorted(by: { $0.key < $1.key }) {
                if Priority(rawValue: priority) == nil { fail("\(here).targets.\(priority)", "not a priority; use low, normal, high or urgent") }
                checkDuration(duration, "\(here).targets.\(priority)", allowZero: false)
            }
            checkStatuses(clock.pauseWhen, "\(here).pauseWhen")
            if let warn = clock.warnAt, !(1...99).contains(warn) { fail("\(here).warnAt", "a percent of the target from 1 to 99") }
            for (list, actions) in [("onWarn", clock.onWarn), ("onBreach", clock.onBreach)] {
                for (i, action) in (actions ?? []).enumerated() {
                    guard let parsed = SLAAction(rawValue: action) else {
                        fail("\(here).\(list)[\(i)]", "\"\(action)\" is not an action; use notify, escalate or raise_priority")
                        continue
                    }
                    if parsed == .escalate && p.ladder == nil { fail("\(here).\(list)[\(i)]", "escalate needs the policy's \"ladder\"") }
                }
            }
            if clock.onWarn?.isEmpty == false && clock.warnAt == nil { fail("\(here).warnAt", "onWarn needs warnAt") }
        }
        if !any { fail("\(path).clocks", "give at least one of firstResponse, nextResponse, resolution, timeToOwn") }
    }

    mutating func checkLadder(_ l: LadderDocument, _ path: String) {
        checkName(l.name, "\(path).name")
        if !(0...9).contains(l.loops) { fail("\(path).loops", "from 0 to 9") }
        if let ack = l.ackTimeout { checkDuration(ack, "\(path).ackTimeout", allowZero: false) }
        if let calendar = l.calendar { checkCalendarRef(calendar, "\(path).calendar") }
        checkStatuses(l.pauseWhen, "\(path).pauseWhen")
        if l.levels.isEmpty { fail("\(path).levels", "a ladder needs at least one level") }
        if l.levels.count > 16 { fail("\(path).levels", "at most 16 levels") }
        for (i, level) in l.levels.enumerated() {
            let here = "\(path).levels[\(i)]"
            checkDuration(level.delay, "\(here).delay", allowZero: true)
            if level.targets.isEmpty { fail("\(here).targets", "a level needs at least one target") }
            for (j, target) in level.targets.enumerated() {
                switch Target(target) {
                case nil: fail("\(here).targets[\(j)]", "\"\(target)\" is not a target; use group@site, tier:N, role:NAME, role:NAME@site or coordinator")
                case .tier?:
                    if bundle.matrix == nil && published.matrix == nil { fail("\(here).targets[\(j)]", "tier targets need an escalation matrix; publish one") }
                case .group(let group, let site)? where directory.isPublished && !allowUnknownTargets && !directory.hasGroup(group, at: site):
                    let near = directory.suggestion(group: group, at: site).map { "; did you mean \"\($0)\"?" } ?? ""
                    fail("\(here).targets[\(j)]", "no active agent in group \(group) at \(site) in the agent directory\(near) (publish the agents first, or allow unknown targets)")
                case .role(let role, let site)? where directory.isPublished && !allowUnknownTargets && !directory.hasRole(role, at: site):
                    let near = directory.suggestion(role: role).map { "; did you mean \"role:\($0)\"?" } ?? ""
                    fail("\(here).targets[\(j)]", "no active agent has the role \(role)\(site.map { " at \($0)" } ?? "") in the agent directory\(near) (publish the agents first, or allow unknown targets)")
                default: break
                }
            }
            if level.assignment != .notify, let first = level.targets.first, case .role? = Target(first) {
                fail("\(here).targets[0]", "\(level.assignment.rawValue) needs a group@site or tier:N target first")
            }
            for (j, action) in (level.actions ?? []).enumerated() {
                switch LevelAction(action) {
                case nil:
                    fail("\(here).actions[\(j)]", "\"\(action)\" is not an action; use notify, raise_priority, watch:NAME or tag:NAME")
                case .watch(let name)? where directory.isPublished && !allowUnknownTargets && directory.agent(name)?.active != true:
                    let why = directory.agent(name) == nil ? "is not in the agent directory" : "is deactivated in the agent directory"
                    let near = directory.agent(name) == nil ? directory.suggestion(for: name).map { "; did you mean \"watch:\($0)\"?" } ?? "" : ""
                    fail("\(here).actions[\(j)]", "watcher \(name) \(why)\(near)")
                default: break
                }
            }
        }
    }

    mutating func checkAgent(_ a: AgentDocument, _ path: String) {
        if (try? Self.agentPattern.wholeMatch(in: a.name)) == nil {
            fail("\(path).name", "\"\(a.name)\" is not an agent name; use 1-64 of a-z, 0-9, ., _ and -, starting with a letter or digit")
        }
        if a.displayName.trimmingCharacters(in: .whitespaces).isEmpty || a.displayName.utf8.count > 256 {
            fail("\(path).displayName", "give the name people see, 1-256 bytes")
        }
        if let email = a.email, !AgentDocument.isEmail(email) {
            fail("\(path).email", "\"\(email)\" is not an e-mail address; write e.g. alice@example.com")
        }
        if (try? Self.sitePattern.wholeMatch(in: a.site)) == nil { fail("\(path).site", "\"\(a.site)\" is not a site id") }
        for (i, group) in a.groups.enumerated()
            where group.isEmpty || group.utf8.count > 64 || group.contains("@") || group.contains(where: { $0.isWhitespace || $0.isNewline }) {
            fail("\(path).groups[\(i)]", "\"\(group)\" is not a group name: 1-64 characters, no spaces and no @")
        }
        if Set(a.groups).count != a.groups.count { fail("\(path).groups", "names a group twice") }
        for (i, role) in a.roles.enumerated() { checkName(role, "\(path).roles[\(i)]") }
        if let calendar = a.calendar { checkCalendarRef(calendar, "\(path).calendar") }
    }

    mutating func checkMatrix(_ m: MatrixDocument, _ path: String) {
        checkDuration(m.grace, "\(path).grace", allowZero: false)
        if let timeout = m.handoffTimeout { checkDuration(timeout, "\(path).handoffTimeout", allowZero: false) }
        for (i, e) in m.entries.enumerated() {
            if e.site != "*", (try? Self.sitePattern.wholeMatch(in: e.site)) == nil { fail("\(path).entries[\(i)].site", "\"\(e.site)\" is not a site id or *") }
            if e.tier < 1 || e.tier > 9 { fail("\(path).entries[\(i)].tier", "a tier from 1 to 9") }
            if case .group? = Target(e.target) {} else { fail("\(path).entries[\(i)].target", "\"\(e.target)\" is not group@site") }
        }
    }

    /// A version is at least 1, appears once per document in the file, and does not go back or
    /// rewrite a published version.
    mutating func checkVersions() {
        var seen = Set<String>()
        let paths: [ConfigDocument.Kind: String] = [.calendar: "calendars", .policy: "policies", .ladder: "ladders", .rule: "rules", .agent: "agents"]
        var index: [ConfigDocument.Kind: Int] = [:]
        for doc in bundle.documents {
            let i = index[doc.kind, default: 0]
            index[doc.kind] = i + 1
            let path = paths[doc.kind].map { "\($0)[\(i)].version" } ?? "matrix.version"
            if doc.version < 1 { fail(path, "version must be at least 1"); continue }
            if !seen.insert(doc.key).inserted { fail(path.replacingOccurrences(of: ".version", with: ".name"), "\(doc.kind.rawValue) \"\(doc.name)\" appears twice in this file") }
            if let same = published.document(doc.kind, doc.name, version: doc.version) {
                if same != doc { fail(path, "\(doc.kind.rawValue) \"\(doc.name)\" version \(doc.version) is already published with other content; published versions never change, so raise the version") }
            } else if let latest = published.latest(doc.kind, doc.name), latest.version > doc.version {
                fail(path, "\(doc.kind.rawValue) \"\(doc.name)\" is published at version \(latest.version); a new version must be higher")
            }
        }
    }
}

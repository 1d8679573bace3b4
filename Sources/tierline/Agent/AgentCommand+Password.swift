import ArgumentParser
import Desk
import Foundation
import TicketStore

extension AgentCommand {
    struct Password: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Set an agent's password for signing in to this node's workspace (kept here only, as a bcrypt hash; never replicated).",
            discussion: """
                The password is read from --password-file, else from standard input: typed twice at a terminal (not echoed), or \
                the first line of a pipe. --generate makes a random one and prints it once. Setting a password signs the agent's \
                browser sessions at this node out.
                """)
        @OptionGroup var options: StoreOptions
        @Argument(help: "The agent's id.") var name: String
        @Option(help: "Read the password from the first line of this file.") var passwordFile: String?
        @Flag(help: "Make a random password and print it once.") var generate = false

        func validate() throws {
            if generate && passwordFile != nil { throw ValidationError("give --generate or --password-file, not both") }
        }

        func run() throws {
            let password: String
            if generate {
                password = AccessDesk.generatePassword()
            } else if let passwordFile {
                guard let data = FileManager.default.contents(atPath: passwordFile), let text = String(data: data, encoding: .utf8) else {
                    throw CLIFailure(message: "cannot read \(passwordFile); give a readable UTF-8 file whose first line is the password", code: 2)
                }
                password = String(text.split(separator: "\n", maxSplits: 1, omittingEmptySubsequences: false).first ?? "")
                    .trimmingCharacters(in: CharacterSet(charactersIn: "\r"))
            } else if isatty(STDIN_FILENO) != 0 {
                let first = Self.prompt("Password for \(name): ")
                guard first == Self.prompt("Again: ") else { throw CLIFailure(message: "the two passwords differ; nothing was changed", code: 2) }
                password = first
            } else {
                password = readLine(strippingNewline: true) ?? ""
            }
            let desk = try AccessDesk(store: options.open())
            try desk.setPassword(name, password: password, now: Int64(TicketDatabase.systemMillis()))
            if options.json {
                struct Output: Encodable { var agent: String; var password: String? }
                return try printJSON(Output(agent: name, password: generate ? password : nil))
            }
            if generate { print("password for \(name): \(password)") }
            print("\(name) can sign in at this node's workspace (/login); its sessions here were signed out")
        }

        static func prompt(_ text: String) -> String {
            guard let pointer = getpass(text) else { return "" }
            return String(cString: pointer)
        }
    }

    struct Token: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Issue, list or revoke an agent's API tokens for this node's ticket API (kept here only, as digests).",
            discussion: """
                With no flag, issues a token and prints it once: send it as Authorization: Bearer TOKEN. --list shows the agent's \
                tokens (never the secrets); --revoke ID revokes one (its ID from --list), --revoke-all every one.
                """)
        @OptionGroup var options: StoreOptions
        @Argument(help: "The agent's id.") var name: String
        @Option(help: "What the token is for (shown by --list).") var label = "api"
        @Flag(help: "List the agent's tokens.") var list = false
        @Option(help: "Revoke the token with this ID.") var revoke: String?
        @Flag(help: "Revoke every token of the agent.") var revokeAll = false

        func validate() throws {
            if [list, revoke != nil, revokeAll].filter({ $0 }).count > 1 { throw ValidationError("give one of --list, --revoke ID and --revoke-all") }
        }

        func run() throws {
            let store = try options.open()
            let desk = try AccessDesk(store: store)
            if list {
                let tokens = try store.agentTokens(of: name)
                if options.json { return try printJSON(tokens) }
                if tokens.isEmpty { return print("\(name) has no API tokens at this node") }
                printTable(["ID", "LABEL", "CREATED", "LAST USED"], tokens.map {
                    [$0.id, TerminalText.visible($0.label), Self.time($0.createdAt), $0.lastUsedAt.map(Self.time) ?? "never"]
                })
                return
            }
            if revoke != nil || revokeAll {
                let count = try store.revokeAgentTokens(of: name, id: revoke)
                if options.json { return try printJSON(["revoked": count]) }
                guard count > 0 else {
                    throw CLIFailure(message: "\(name) has no token \(revoke.map { "with ID \($0)" } ?? "") at this node; `tierline agent token \(name) --list` shows them")
                }
                return print("revoked \(count) token(s) of \(name)")
            }
            let token = try desk.issueToken(name, label: label, now: Int64(TicketDatabase.systemMillis()))
            if options.json { return try printJSON(["agent": name, "token": token]) }
            print(token)
            FileHandle.standardError.write(Data("issued an API token for \(name); it is shown once, keep it as a secret\n".utf8))
        }

        static func time(_ millis: Int64) -> String {
            ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: Double(millis) / 1000))
        }
    }
}

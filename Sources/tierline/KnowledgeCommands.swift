import Desk
import ArgumentParser
import Foundation
import TicketModel
import TicketStore

/// `tierline customer`: customer records from a CRM, replicated like tickets.
struct CustomerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "customer", abstract: "Customer records (name, contacts, organization, tier, value), replicated to every site.",
        subcommands: [Import.self, List.self, Show.self])

    struct Import: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Import or update customers from a CRM's CSV export.",
            discussion: "Columns: id, name, email, phone, organization, tier, value (header row required; each row needs an id, email or phone). Fields that are unchanged are not written again, so importing the same file twice writes nothing.")
        @OptionGroup var options: StoreOptions
        @Argument(help: "The CSV file.") var file: String

        func run() throws {
            guard let data = FileManager.default.contents(atPath: file) else {
                throw CLIFailure(message: "cannot read \(file); check the path and its permissions")
            }
            let report = try HelpDesk(store: options.open()).importCustomers(csv: data, file: file) { done, total in
                if total > 2_000 { FileHandle.standardError.write(Data("imported \(done)/\(total) rows\n".utf8)) }
            }
            if options.json { return try printJSON(report) }
            print("\(report.rows) rows: \(report.created) new, \(report.updated) updated, \(report.unchanged) unchanged")
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Customers this replica holds.")
        @OptionGroup var options: StoreOptions
        func run() throws {
            let customers = try options.open().customers()
            if options.json { return try printJSON(customers) }
            printTable(["KEY", "NAME", "ORGANIZATION", "TIER", "VALUE", "EMAIL", "PHONE"], customers.map {
                [$0.key, $0.name ?? "—", $0.organization ?? "—", $0.tier ?? "—", $0.value ?? "—", $0.email ?? "—", $0.phone ?? "—"]
            })
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "One customer, by id, email or phone.")
        @OptionGroup var options: StoreOptions
        @Argument(help: "The customer's CRM id, email or phone.") var customer: String
        func run() throws {
            guard let record = try options.open().customer(customer) else {
                throw CLIFailure(message: "no customer \(customer.debugDescription) in this store; `tierline customer list` shows them")
            }
            if options.json { return try printJSON(record) }
            for (key, value) in [("key", record.key), ("name", record.name), ("email", record.email), ("phone", record.phone),
                                 ("organization", record.organization), ("tier", record.tier), ("value", record.value)] {
                print(key.padding(toLength: 12, withPad: " ", startingAt: 0) + "  " + (value ?? "—"))
            }
        }
    }
}

/// `tierline kb`: the knowledge base of resolutions.
struct KBCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kb", abstract: "Knowledge articles written from resolutions, replicated to every site and searched with SQLite FTS5.",
        subcommands: [Add.self, Search.self, Link.self, List.self, Show.self])

    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Record a solved ticket's resolution as a knowledge article.")
        @OptionGroup var options: StoreOptions
        @OptionGroup var actor: ActorOption
        @Argument(help: "The solved ticket's id or display number.") var ticket: String
        @Option(help: "A title first line will search for.") var title: String
        @Option(help: "What the problem was and how it was solved, in a few lines.") var summary: String
        @Option(help: "Why it happened.") var rootCause: String
        @Option(help: "The steps that solve it.") var steps: String

        func run() throws {
            let article = try HelpDesk(store: options.open()).writeArticle(from: ticket, ArticleDraft(title: title, summary: summary, rootCause: rootCause,
                                                                                      steps: steps, author: actor.actor))
            if options.json { return try printJSON(article) }
            print("recorded \(article.ref)  \(article.title)")
        }
    }

    struct Search: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Find articles: the exact phrase first, then all words, then any word.")
        @OptionGroup var options: StoreOptions
        @Argument(help: "The words to look for.") var text: [String]
        @Option(help: "At most this many results (1–100).") var limit = 10

        func validate() throws {
            guard (1...100).contains(limit) else { throw ValidationError("--limit must be 1 to 100, got \(limit)") }
        }

        func run() throws {
            let hits = try options.open().searchArticles(text.joined(separator: " "), limit: limit)
            if options.json { return try printJSON(hits) }
            if hits.isEmpty { return print("no article matches; `tierline kb list` shows them all") }
            printTable(["ARTICLE", "MATCH", "SCORE", "SITE", "FROM", "TITLE"], hits.map {
                [$0.article.ref, $0.match, String(format: "%.3g", $0.score), $0.article.site ?? "—", $0.article.sourceTicket ?? "—", $0.article.title]
            }, maxWidth: 80)
        }
    }

    struct Link: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Record that an article was used on a ticket (first line resolved with it).")
        @OptionGroup var options: StoreOptions
        @Argument(help: "The ticket's id or display number.") var ticket: String
        @Argument(help: "The article (KB-1a2b3c4d).") var article: String

        func run() throws {
            let (record, linked) = try HelpDesk(store: options.open()).link(ticket, article: article)
            if options.json { return try printJSON(["ticket": record.displayNumber, "article": linked.ref]) }
            print("linked \(record.displayNumber) to \(linked.ref) (used on \(linked.uses) ticket(s))")
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Every article, newest first.")
        @OptionGroup var options: StoreOptions
        func run() throws {
            let articles = try options.open().articles()
            if options.json { return try printJSON(articles) }
            printTable(["ARTICLE", "CREATED", "SITE", "FROM", "USES", "TITLE"], articles.map {
                [$0.ref, $0.createdAt ?? "—", $0.site ?? "—", $0.sourceTicket ?? "—", String($0.uses), $0.title]
            }, maxWidth: 80)
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "One article in full.")
        @OptionGroup var options: StoreOptions
        @Argument(help: "The article (KB-1a2b3c4d).") var article: String
        func run() throws {
            let a = try options.open().article(article)
            if options.json { return try printJSON(a) }
            print("\(a.ref)  \(a.title)\nfrom \(a.sourceTicket ?? "—") by \(a.author ?? "—") at \(a.site ?? "—"), \(a.createdAt ?? "—"); used on \(a.uses) ticket(s)\n")
            print("Summary\n  \(a.summary)\n\nRoot cause\n  \(a.rootCause)\n\nSteps\n  \(a.steps)")
        }
    }
}

/// `tierline intake`: the credentials of the integrations that deliver tickets to this node.
struct IntakeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "intake", abstract: "Intake API tokens, one per integration (email gateway, chat, phone, portal, bots).",
        subcommands: [Token.self])

    struct Token: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Make, list and revoke API tokens (kept only as SHA-256 in this node's store).",
                                                        subcommands: [Add.self, List.self, Revoke.self])

        struct Add: ParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Make a token for an integration; it is printed once.")
            @OptionGroup var options: StoreOptions
            @Argument(help: "The integration's name (a-z, 0-9, . _ -).") var name: String
            @Option(name: .customLong("channel"), help: "A channel it may deliver (repeat; none = every channel): email, chat, phone, social, portal, bot, api.")
            var channels: [String] = []

            func validate() throws {
                for channel in channels where !IntakeChannel.all.contains(channel) {
                    throw ValidationError("unknown channel '\(channel)'; channels: \(IntakeChannel.all.joined(separator: ", "))")
                }
            }

            func run() throws {
                let token = try options.open().addAPIToken(name: name, channels: channels)
                if options.json {
                    struct Made: Encodable { var name: String; var token: String; var channels: [String] }
                    return try printJSON(Made(name: name, token: token, channels: channels))
                }
                print("token for \(name) (shown only now; the store keeps its SHA-256):\n\(token)")
            }
        }

        struct List: ParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Tokens of this node (names and channels, never the tokens).")
            @OptionGroup var options: StoreOptions
            func run() throws {
                let tokens = try options.open().apiTokens()
                if options.json { return try printJSON(tokens) }
                printTable(["NAME", "CHANNELS", "CREATED", "REVOKED"], tokens.map {
                    [$0.name, $0.channels.isEmpty ? "all" : $0.channels.joined(separator: ","), $0.createdAt, $0.revokedAt ?? "—"]
                })
            }
        }

        struct Revoke: ParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Refuse a token from now on.")
            @OptionGroup var options: StoreOptions
            @Argument(help: "The token's name.") var name: String
            func run() throws {
                try options.open().revokeAPIToken(name: name)
                if options.json { return try printJSON(["revoked": name]) }
                print("revoked \(name)")
            }
        }
    }
}

import Desk
import ArgumentParser
import Foundation
import TicketModel
import TicketStore

extension CustomerCommand {
    struct Import: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Import or update customers from a CRM's CSV export.",
            discussion: "Columns: id, name, email, phone, organization, tier, value (header row required; each row needs an id, email or phone; value is a number; a tier must be one the published configuration names, or with none named there one a customer already has, unless --allow-unknown). Fields that are unchanged are not written again, so importing the same file twice writes nothing.")
        @OptionGroup var options: StoreOptions
        @Argument(help: "The CSV file.") var file: String
        @Flag(help: "Take a tier that neither the published configuration nor any customer record names (a new one, on purpose) instead of refusing it.") var allowUnknown = false

        func run() throws {
            let data = try contents(of: file, hint: "; check the path and its permissions")
            let report = try HelpDesk(store: options.open()).importCustomers(csv: data, file: file, allowUnknown: allowUnknown) { done, total in
                if total > 2_000 { FileHandle.standardError.write(Data("imported \(done)/\(total) rows\n".utf8)) }
            }
            if options.json { return try printJSON(report) }
            print("\(report.rows) rows: \(report.created) new, \(report.updated) updated, \(report.unchanged) unchanged")
        }
    }
}

@testable import Desk
import Escalation
import Foundation
import TestSupport
import Testing
import TicketModel
import TicketStore

/// A coordinator with two active agents and a retired one, and the access desk over it at cost 4.
struct AccessFixture {
    static let now: Int64 = 1_790_000_000_000
    let store: TicketDatabase
    let access: AccessDesk

    init() throws {
        store = try memoryStore("hq", role: .coordinator)
        let agents = try AgentDesk(store: store)
        try agents.add(AgentDocument(name: "mia", version: 1, displayName: "Mia", site: "hq", role: .manager), actor: "root")
        try agents.add(AgentDocument(name: "ada", version: 1, displayName: "Ada", site: "hq"), actor: "root")
        try agents.add(AgentDocument(name: "old", version: 1, displayName: "Old", site: "hq"), actor: "root")
        try agents.deactivate("old", actor: "root")
        access = try AccessDesk(store: store, cost: 4)
    }
}

func deskError(_ body: () throws -> Void) -> DeskError? {
    do { try body() } catch let error as DeskError { return error } catch { Issue.record("not a DeskError: \(error)") }
    return nil
}

@Suite struct AccessDeskTests {
    @Test func passwordRules() throws {
        let f = try AccessFixture()
        let now = AccessFixture.now
        #expect(deskError { try f.access.setPassword("mia", password: "short", now: now) }?.field == "password")
        #expect(deskError { try f.access.setPassword("mia", password: String(repeating: "é", count: 37), now: now) }?.field == "password")
        #expect(deskError { try f.access.setPassword("mia", password: "tab\there is bad", now: now) }?.field == "password")
        #expect(deskError { try f.access.setPassword("nobody", password: "long enough password", now: now) }?.code == .notFound)
        #expect(deskError { try f.access.setPassword("old", password: "long enough password", now: now) }?.code == .wrongState)
        // Exactly 10 characters, and exactly 72 bytes, are accepted.
        try f.access.setPassword("mia", password: "0123456789", now: now)
        try f.access.setPassword("ada", password: String(repeating: "ab", count: 36), now: now)
        #expect(try f.access.signIn("ada", password: String(repeating: "ab", count: 36), now: now).agent.name == "ada")
        #expect(try f.store.passwordHash(of: "mia")?.hasPrefix("$2") == true)
    }

    @Test func signInRefusesEveryFailureAlike() throws {
        let f = try AccessFixture()
        let now = AccessFixture.now
        try f.access.setPassword("mia", password: "the right password", now: now)
        let wrong = deskError { _ = try f.access.signIn("mia", password: "the wrong password", now: now) }
        let unknown = deskError { _ = try f.access.signIn("nobody", password: "the right password", now: now) }
        let noPassword = deskError { _ = try f.access.signIn("ada", password: "the right password", now: now) }
        #expect(wrong?.code == .notPermitted)
        #expect(wrong == unknown)
        #expect(wrong == noPassword)
    }

    @Test func sessionsExpireAndEnd() throws {
        let f = try AccessFixture()
        let now = AccessFixture.now
        try f.access.setPassword("mia", password: "the right password", now: now)
        let session = try f.access.signIn("mia", password: "the right password", now: now)
        #expect(session.expiresAt == now + AccessDesk.sessionMillis)
        let live = try #require(try f.access.session(session.secret, now: now + AccessDesk.sessionMillis - 1))
        #expect(live.name == "mia")
        #expect(live.proof == .session(csrf: session.csrf))
        #expect(try f.access.session(session.secret, now: now + AccessDesk.sessionMillis) == nil)
        // Unknown and malformed secrets are no session.
        #expect(try f.access.session(String(repeating: "A", count: 43), now: now) == nil)
        #expect(try f.access.session("not a secret", now: now) == nil)
        // Signing out ends it; a new password ends every session of the agent.
        let second = try f.access.signIn("mia", password: "the right password", now: now)
        let third = try f.access.signIn("mia", password: "the right password", now: now)
        try f.access.signOut(second.secret)
        #expect(try f.access.session(second.secret, now: now) == nil)
        #expect(try f.access.session(third.secret, now: now) != nil)
        try f.access.setPassword("mia", password: "another good password", now: now + 1)
        #expect(try f.access.session(third.secret, now: now + 1) == nil)
    }

    @Test func tokensAreRevokedOneByOneOrAll() throws {
        let f = try AccessFixture()
        let now = AccessFixture.now
        let first = try f.access.issueToken("mia", label: "scripts", now: now)
        let second = try f.access.issueToken("mia", label: "grafana", now: now)
        #expect(first.hasPrefix("tla_") && first.count == 47)
        #expect(try f.access.agent(token: first, now: now)?.proof == .token)
        let listed = try f.store.agentTokens(of: "mia")
        #expect(Set(listed.map(\.label)) == ["scripts", "grafana"])
        let scripts = try #require(listed.first { $0.label == "scripts" })
        #expect(try f.store.revokeAgentTokens(of: "mia", id: scripts.id) == 1)
        #expect(try f.access.agent(token: first, now: now) == nil)
        #expect(try f.access.agent(token: second, now: now)?.name == "mia")
        // Another agent's revoke-all leaves mia's token alone; mia's own revokes it.
        _ = try f.access.issueToken("ada", label: "api", now: now)
        #expect(try f.store.revokeAgentTokens(of: "ada", id: nil) == 1)
        #expect(try f.access.agent(token: second, now: now) != nil)
        #expect(try f.store.revokeAgentTokens(of: "mia", id: nil) == 1)
        #expect(try f.access.agent(token: second, now: now) == nil)
        // A label must say something printable, and a retired agent gets no token.
        #expect(deskError { _ = try f.access.issueToken("mia", label: "  ", now: now) }?.field == "label")
        #expect(deskError { _ = try f.access.issueToken("old", label: "api", now: now) }?.code == .wrongState)
    }

    @Test func aDeactivatedAgentLosesSessionsAndTokens() throws {
        let f = try AccessFixture()
        let now = AccessFixture.now
        try f.access.setPassword("ada", password: "the right password", now: now)
        let session = try f.access.signIn("ada", password: "the right password", now: now)
        let token = try f.access.issueToken("ada", label: "api", now: now)
        try AgentDesk(store: f.store).deactivate("ada", actor: "root")
        #expect(try f.access.session(session.secret, now: now) == nil)
        #expect(try f.access.agent(token: token, now: now) == nil)
        #expect(deskError { _ = try f.access.signIn("ada", password: "the right password", now: now) }?.code == .notPermitted)
    }

    /// Adding a deactivated agent again gives it a new start: what it held before stays ended, and it
    /// signs in and gets tokens anew.
    @Test func anAgentAddedAgainDoesNotGetItsOldSessionsAndTokensBack() throws {
        let f = try AccessFixture()
        let now = AccessFixture.now
        try f.access.setPassword("ada", password: "the right password", now: now)
        let session = try f.access.signIn("ada", password: "the right password", now: now)
        let token = try f.access.issueToken("ada", label: "api", now: now)
        let agents = try AgentDesk(store: f.store)
        try agents.deactivate("ada", actor: "root")
        try agents.add(AgentDocument(name: "ada", version: 1, displayName: "Ada", site: "hq"), actor: "root")
        #expect(try f.access.session(session.secret, now: now) == nil)
        #expect(try f.access.agent(token: token, now: now) == nil)
        let again = try f.access.signIn("ada", password: "the right password", now: now)
        #expect(try f.access.session(again.secret, now: now)?.name == "ada")
        let newToken = try f.access.issueToken("ada", label: "api", now: now)
        #expect(try f.access.agent(token: newToken, now: now)?.name == "ada")
        // An unrelated new version (a new group) keeps what was given since the comeback.
        try agents.add(AgentDocument(name: "ada", version: 1, displayName: "Ada", site: "hq", groups: ["tier1"]), actor: "root")
        #expect(try f.access.agent(token: newToken, now: now)?.name == "ada")
    }

    @Test func permissionsFollowRoleAndGrants() {
        func signedIn(_ role: AgentRole, roles: [String] = []) -> SignedIn {
            SignedIn(agent: AgentDocument(name: "x", version: 1, displayName: "X", site: "hq", role: role, roles: roles), proof: .token)
        }
        #expect(Permission.allCases.filter { signedIn(.agent).may($0) } == [.work, .escalate])
        #expect(Permission.allCases.filter { signedIn(.lead).may($0) } == [.work, .escalate, .handoffs, .articles])
        #expect(Permission.allCases.filter { signedIn(.manager).may($0) } == Permission.allCases)
        #expect(signedIn(.agent, roles: ["dashboard"]).may(.dashboard))
        #expect(!signedIn(.agent, roles: ["team_lead"]).may(.handoffs))
    }
}

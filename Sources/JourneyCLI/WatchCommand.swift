import ArgumentParser
import Foundation
import Journey

/// `journey watch [--since ID] [--json]`: the transition feed (SPEC §9) on a terminal or in a pipe.
struct WatchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "watch",
        abstract: "Print each transition as it commits, whichever process made it; runs until interrupted.",
        discussion: """
            Without --since, only moves committed from now on. With --since ID, first every recorded move \\
            with a larger id (0: the whole history), then the live ones; after an interruption, resume with \\
            --since and the last id printed: nothing is skipped or repeated. --json prints one object per \\
            line: id, user_id, seq, from_state, to_state, reason, rules_version, metrics (an object), \\
            source, created_at.
            """)

    @OptionGroup var database: DatabaseOptions
    @Option(help: ArgumentHelp("Replay the moves with an id above this one first.", valueName: "id")) var since: Int64?
    @Option(help: ArgumentHelp("Milliseconds between two checks for commits by other processes.", valueName: "ms")) var interval = 200
    @OptionGroup var output: OutputOptions

    func validate() throws {
        if let since, since < 0 { throw ValidationError("Please specify a '--since' of 0 or more.") }
        guard interval >= 10 else { throw ValidationError("Please specify an '--interval' of at least 10 milliseconds.") }
    }

    func run() async throws {
        let service = try await makeService(database: database, rules: nil, access: .readOnly, feedPollInterval: .milliseconds(interval))
        let start: Int64
        if let since { start = since } else { start = try await service.lastTransitionID() }
        let json = output.json
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await service.run() }
            group.addTask {
                for try await move in service.transitions(after: start) {
                    if json {
                        try printJSON(TransitionReport(move))
                    } else {
                        FileHandle.standardOutput.write(Data((Self.line(move) + "\n").utf8))
                    }
                }
            }
            try await group.next()
            group.cancelAll()
        }
    }

    /// `#412  2026-11-29 10:02:03  user 42  J1_NEW_USER → J2_ACTIVE_USER  batch, rules mundo-tango-1: criteria met`
    static func line(_ move: RecordedTransition) -> String {
        "#\(move.id)  \(Format.timestamp(move.createdAt))  user \(move.userID)  \(move.from) → \(move.to)  \(move.source.rawValue), rules \(move.rulesVersion): \(move.reason)"
    }
}

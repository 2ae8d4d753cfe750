import ArgumentParser
import Journey

/// `journey evaluate <user>`: metrics, moves made, stage and progress toward the next stage.
struct EvaluateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "evaluate",
        abstract: "Evaluate one user and record the moves their metrics allow.")

    @Argument(help: "The user's id.") var user: UserID
    @OptionGroup var database: DatabaseOptions
    @OptionGroup var rules: RulesOptions
    @Flag(name: .long, help: "Show the moves without writing anything.") var dryRun = false
    @OptionGroup var output: OutputOptions

    @OptionGroup(title: "Logging") var logging: LoggingOptions

    func run() async throws {
        let service = try await makeService(database: database, rules: rules.choice, access: dryRun ? .readOnly : .readWrite)
        let journey = dryRun ? try await service.journey(of: user.value) : try await service.evaluateAndPersist(user: user.value)
        if output.json {
            try printJSON(EvaluationReport(journey, rules: service.rules, persisted: !dryRun))
        } else {
            print(TextReport.evaluation(journey, rules: service.rules, persisted: !dryRun))
        }
    }
}

/// `journey explain <user>`: the checklist toward the next stage, without writing.
struct ExplainCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "explain",
        abstract: "Show which criteria of the next stage a user meets, without writing.")

    @Argument(help: "The user's id.") var user: UserID
    @OptionGroup var database: DatabaseOptions
    @OptionGroup var rules: RulesOptions
    @OptionGroup var output: OutputOptions

    @OptionGroup(title: "Logging") var logging: LoggingOptions

    func run() async throws {
        let service = try await makeService(database: database, rules: rules.choice, access: .readOnly)
        let journey = try await service.journey(of: user.value)
        if output.json {
            try printJSON(EvaluationReport(journey, rules: service.rules, persisted: false))
            return
        }
        let stage = journey.evaluation.start
        print("User \(user.value): \(stage) (\(service.rules.stage(stage)?.title ?? ""))")
        if let pin = journey.pin { print(TextReport.pinned(pin)) }
        if !journey.evaluation.transitions.isEmpty {
            print(
                "Qualifies now for: \(journey.evaluation.transitions.map(\.to.rawValue).joined(separator: " → ")) (run journey evaluate \(user.value) to record)"
            )
        }
        print(TextReport.checklist(journey.evaluation.next, rules: service.rules).joined(separator: "\n"))
    }
}

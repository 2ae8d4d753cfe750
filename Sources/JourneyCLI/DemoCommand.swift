import ArgumentParser
import Foundation
import Journey

/// `journey demo`: a generated platform database, migrated, evaluated, and a few users explained.
struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Build a demo database and show the journey working on it.")

    @Option(help: "How many users to generate.") var users = 3_000
    @Option(help: "The generator's seed.") var seed: UInt64 = 7
    @Option(name: .long, help: ArgumentHelp("Keep the demo database at this path (default: a temporary file).", valueName: "path")) var output: String?

    @OptionGroup(title: "Logging") var logging: LoggingOptions

    func validate() throws {
        guard users >= 100 else { throw ValidationError("Please specify '--users' of at least 100.") }
        if let output, FileManager.default.fileExists(atPath: output) {
            throw ValidationError("'\(output)' already exists; choose a new '--output' file.")
        }
    }

    func run() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("journey-demo-\(ProcessInfo.processInfo.processIdentifier)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let path = output ?? directory.appendingPathComponent("demo.sqlite").path
        defer { if output == nil { try? FileManager.default.removeItem(at: directory) } }

        let counts = try DemoData.writePlatformDatabase(at: path, users: users, seed: seed)
        print(
            "1. Generated a platform database: \(counts.users) users, \(counts.posts) posts, \(counts.follows) follows, \(counts.events) events, \(counts.rsvps) RSVPs."
        )
        let service = try await JourneyService.open(
            database: path, access: .migrate,
            options: JourneyOptions(slowEvaluationLevel: .info, logger: cliLogger, source: .cli))
        print("2. Migrated it: journey columns, history tables, 15 indexes, follower_count triggers.")

        // Each moved user's evaluation as it was persisted: the sections below show these moves.
        var moved: [Int64: UserJourney] = [:]
        for user in 1...Int64(users) {
            let journey = try await service.evaluateAndPersist(user: user)
            if !journey.recorded.isEmpty { moved[user] = journey }
        }
        let funnel = try await service.funnel()
        print("3. Evaluated every user; \(Format.count(moved.count, "user")) moved. Users per stage now:")
        FunnelRow.print(funnel, rules: service.rules, indent: "   ")

        let twoHops = moved.filter { $0.value.recorded.count == 2 && $0.value.evaluation.transitions.allSatisfy { $0.kind == .next } }.keys.min()
        let admin = moved.filter { $0.value.evaluation.transitions.contains { $0.kind == .skip } }.keys.min()
        var stuck: Int64?
        for user in 1...Int64(users) where moved[user] == nil {
            let journey = try await service.journey(of: user)
            if journey.evaluation.stage == service.rules.initialStage, (journey.evaluation.next?.criteriaMet ?? 0) >= 2 {
                stuck = user
                break
            }
        }
        for (title, user) in [
            ("Two hops, two recorded transitions (never one J1→J3 row)", twoHops),
            ("A super-admin: the one declared skip", admin),
            ("Still a new user, and what is missing", stuck),
        ] {
            guard let user else { continue }
            print("\n── User \(user). \(title) ──")
            let journey: UserJourney
            if let evaluated = moved[user] { journey = evaluated } else { journey = try await service.journey(of: user) }
            print(TextReport.evaluation(journey, rules: service.rules, persisted: true))
            let recorded = try await service.history(user: user).map { "#\($0.seq) \($0.from) → \($0.to)" }
            print("History: \(recorded.isEmpty ? "no moves" : recorded.joined(separator: ", "))")
        }
        if let stuck {
            print("\n── Asking to move user \(stuck) from J1 straight to J3 ──")
            do {
                _ = try await service.requestTransition(user: stuck, to: StageID("J3_POWER_USER"))
            } catch {
                print("Refused: \(error)")
            }
        }
        if let output {
            let run = "\(Self.invocation) %@ --db \(Self.shellQuoted(URL(fileURLWithPath: output).path))"
            print("\nThe database is at \(output). Try:")
            for command in ["history \(twoHops ?? 1)", "explain \(stuck ?? 1)", "status"] {
                print("  " + run.replacingOccurrences(of: "%@", with: command))
            }
        }
    }

    /// How to run this same `journey` from any directory: `swift run journey` when it was built in a
    /// package's `.build` and the working directory is that package, else the executable's absolute
    /// path, or `journey` when it was found on the PATH.
    static var invocation: String {
        let argument = CommandLine.arguments.first ?? "journey"
        guard argument.contains("/") else { return argument }
        let executable = URL(fileURLWithPath: argument).standardizedFileURL.path
        let package = FileManager.default.currentDirectoryPath
        if executable.hasPrefix(package + "/.build/"), FileManager.default.fileExists(atPath: package + "/Package.swift") {
            return "swift run journey"
        }
        return shellQuoted(executable)
    }

    /// `text` as one shell word: unchanged when it is plain, else in single quotes.
    static func shellQuoted(_ text: String) -> String {
        text.allSatisfy { $0.isLetter || $0.isNumber || "/._-+:,=@".contains($0) } ? text : "'" + text.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }
}

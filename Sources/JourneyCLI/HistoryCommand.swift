import ArgumentParser
import Foundation
import Journey
import JourneySQLite

/// `journey history <user>`: each recorded move, when each stage was entered and how long it lasted.
struct HistoryCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "history",
        abstract: "Show a user's recorded moves and the time spent in each stage.")

    @Argument(help: "The user's id.") var user: UserID
    @OptionGroup var database: DatabaseOptions
    @OptionGroup var output: OutputOptions

    /// One stage the user was in: when it began (signup for the first) and how long it lasted.
    struct Stay: Encodable {
        let stage: String
        let enteredAt: Date?
        let leftAt: Date?
        let seconds: Double?
        let seq: Int?
        let reason: String?
        let source: String?
        let rulesVersion: String?

        enum CodingKeys: String, CodingKey {
            case stage, enteredAt = "entered_at", leftAt = "left_at", seconds, seq, reason, source, rulesVersion = "rules_version"
        }

        /// Every key is always present, null where it does not apply.
        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(stage, forKey: .stage)
            try container.encode(enteredAt, forKey: .enteredAt)
            try container.encode(leftAt, forKey: .leftAt)
            try container.encode(seconds, forKey: .seconds)
            try container.encode(seq, forKey: .seq)
            try container.encode(reason, forKey: .reason)
            try container.encode(source, forKey: .source)
            try container.encode(rulesVersion, forKey: .rulesVersion)
        }
    }

    struct Report: Encodable {
        let user: Int64
        let stage: String
        /// The operator's pin holding the user's stage; null in JSON when there is none.
        let pin: PinJSON?
        let stays: [Stay]

        enum CodingKeys: String, CodingKey { case user, stage, pin, stays }

        /// Every key is always present; `pin` is null for a user who is not pinned.
        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(user, forKey: .user)
            try container.encode(stage, forKey: .stage)
            try container.encode(pin, forKey: .pin)
            try container.encode(stays, forKey: .stays)
        }
    }

    @OptionGroup(title: "Logging") var logging: LoggingOptions

    func run() async throws {
        let database = try self.database.open(.readOnly)
        let now = Date()
        let moves = try await storeCall { () async throws(StoreError) in try await database.history(user: user.value) }
        let snapshot = try await storeCall { () async throws(StoreError) in try await database.snapshot(user: user.value, now: now) }
        var stays: [Stay] = []
        var enteredAt = snapshot.metrics.signedUpAt
        var stage = moves.first?.from.rawValue ?? snapshot.storedStage
        var entry: RecordedTransition?
        for move in moves {
            stays.append(stay(stage, enteredAt, move.createdAt, entry))
            (stage, enteredAt, entry) = (move.to.rawValue, move.createdAt, move)
        }
        stays.append(stay(stage, enteredAt, nil, entry, now: now))
        if output.json {
            try printJSON(Report(user: user.value, stage: snapshot.storedStage,
                                 pin: snapshot.pin.map(PinJSON.init), stays: stays))
            return
        }
        print("User \(user.value): \(snapshot.storedStage), \(moves.count) recorded move\(moves.count == 1 ? "" : "s")")
        if let pin = snapshot.pin { print(TextReport.pinned(pin)) }
        let rows = stays.map { stay in
            let entered = stay.enteredAt.map(Format.timestamp) ?? "unknown"
            let how = stay.seq.map { "#\($0) via \(stay.source ?? "?"): \(stay.reason ?? "")" } ?? "(signup)"
            // A stay under a second that ended: the next move was made in the same evaluation.
            let spent = stay.seconds.map { seconds in
                stay.leftAt == nil ? "\(Format.duration(seconds)) so far" : seconds < 1 ? "same evaluation" : Format.duration(seconds)
            } ?? "?"
            return [stay.stage.printable, "entered \(entered)", spent, how]
        }
        Format.table(rows, indent: "  ").forEach { print($0) }
    }

    private func stay(_ stage: String, _ entered: Date?, _ left: Date?, _ entry: RecordedTransition?, now: Date? = nil) -> Stay {
        let end = left ?? now
        let seconds = entered.flatMap { start in end.map { $0.timeIntervalSince(start) } }
        return Stay(stage: stage, enteredAt: entered, leftAt: left, seconds: seconds, seq: entry?.seq, reason: entry?.reason,
                    source: entry?.source.rawValue, rulesVersion: entry?.rulesVersion)
    }
}

public import Foundation
internal import JourneySQLite

// The JSON shapes every front end shares: `journey evaluate --json` and the example server's
// `GET /users/{id}/journey` print one ``EvaluationReport``; `journey watch --json`, the server's
// event stream and its `POST …/transitions` answer print one ``TransitionReport``. Typed: numbers
// are JSON numbers, lists are lists, a missing value is `null` (every key is always present), and
// every instant is ISO-8601 text in UTC (`2026-11-28T05:04:09Z`) whatever the encoder's date
// strategy, so a host's `JSONEncoder()` and the command line's print the same object.

/// The text of every instant Journey shows: ISO-8601 in UTC, to the second, with `Z`.
public enum JourneyTimestamp {
    /// `2026-11-28T05:04:09Z` for `date` (rounded to the millisecond, then cut to the second, as
    /// the database stores instants).
    public static func iso8601(_ date: Date) -> String {
        SQLTimestamp.iso8601(date)
    }

    /// The instant an ISO-8601 (or SQL) timestamp text names; nil when it fits no form of SPEC §8.
    public static func date(_ text: String) -> Date? {
        Timestamp.date(text: text)
    }
}

/// A JSON scalar of a report: a metric's value, typed.
public enum ReportValue: Hashable, Sendable, Codable, CustomStringConvertible {
    /// A whole number (`posts`, `days_since_signup`).
    case integer(Int)
    /// A number with a fraction (only from data written by another application).
    case number(Double)
    /// `true` or `false` (`onboarding_complete`).
    case boolean(Bool)
    /// Text (`subscription_tier`, `role`).
    case text(String)
    /// No value: the data is NULL (JSON `null`).
    case null

    /// The value of a metric as evaluation computed it.
    public init(_ value: MetricValue) {
        switch value {
        case .integer(let number): self = .integer(number)
        case .boolean(let flag): self = .boolean(flag)
        case .text(let text): self = .text(text)
        case .missing: self = .null
        }
    }

    /// Reads a JSON scalar; an array or object fails with `DecodingError.typeMismatch`.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let flag = try? container.decode(Bool.self) {
            self = .boolean(flag)
        } else if let number = try? container.decode(Int.self) {
            self = .integer(number)
        } else if let number = try? container.decode(Double.self) {
            self = .number(number)
        } else {
            self = .text(try container.decode(String.self))
        }
    }

    /// Writes the scalar: a number, a boolean, a string or `null`.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .integer(let number): try container.encode(number)
        case .number(let number): try container.encode(number)
        case .boolean(let flag): try container.encode(flag)
        case .text(let text): try container.encode(text)
        case .null: try container.encodeNil()
        }
    }

    /// The value as text shows it: the number, `true`/`false`, the text, or `missing` for null.
    public var description: String {
        switch self {
        case .integer(let number): String(number)
        case .number(let number): String(number)
        case .boolean(let flag): String(flag)
        case .text(let text): text
        case .null: "missing"
        }
    }

    /// The metrics a transition row recorded (a JSON object, as text), typed; an empty dictionary
    /// when the stored text is not a JSON object of scalars (a row written by another application).
    static func metrics(json text: String) -> [String: ReportValue] {
        (try? JSONDecoder().decode([String: ReportValue].self, from: Data(text.utf8))) ?? [:]
    }
}

/// An operator's pin in a report: `{"stage", "reason", "pinned_at"}`.
public struct PinReport: Hashable, Sendable, Codable {
    /// The stored stage the user is held in (as stored: empty for a user never evaluated).
    public var stage: String
    /// Why the operator pinned the user.
    public var reason: String
    /// When the pin was set (ISO-8601 text in JSON).
    public var pinnedAt: Date

    enum CodingKeys: String, CodingKey { case stage, reason, pinnedAt = "pinned_at" }

    /// The report of `pin`.
    public init(_ pin: Pin) {
        stage = pin.stage
        reason = pin.reason
        pinnedAt = pin.createdAt
    }

    /// Reads the object; `pinned_at` is ISO-8601 text.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        stage = try container.decode(String.self, forKey: .stage)
        reason = try container.decode(String.self, forKey: .reason)
        pinnedAt = try container.decodeTimestamp(forKey: .pinnedAt)
    }

    /// Writes the object; `pinned_at` as ISO-8601 text.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(stage, forKey: .stage)
        try container.encode(reason, forKey: .reason)
        try container.encodeTimestamp(pinnedAt, forKey: .pinnedAt)
    }
}

/// One user's evaluation: the JSON of `journey evaluate --json`, `journey explain --json` and the
/// example server's `GET /users/{id}/journey` and `POST /users/{id}/journey/evaluate` (README,
/// "Machine output"). Every key is always present; `next` and `pin` are null when there is none.
///
/// ```json
/// {"user": 42, "stored_stage": "J2_ACTIVE_USER", "stage": "J2_ACTIVE_USER", "title": "Active User", "persisted": true,
///  "transitions": [{"id": 7, "seq": 1, "from": "J1_NEW_USER", "to": "J2_ACTIVE_USER", "kind": "next", "reason": "…"}],
///  "next": {"stage": "J3_POWER_USER", "title": "Power User", "met": false, "criteria_met": 1, "criteria_count": 4,
///           "criteria": [{"metric": "posts", "operator": ">=", "threshold": "50", "actual": "12", "met": false,
///                         "criterion": 1, "criterion_met": false, "any_of_group": null}]},
///  "pin": null, "metrics": {"posts": 12, "role": "user", "onboarding_complete": true, "subscription_tier": null},
///  "rules_version": "mundo-tango-1", "evaluated_at": "2026-11-28T05:04:09Z"}
/// ```
public struct EvaluationReport: Hashable, Sendable, Codable {
    /// One move of the evaluation: recorded (`persisted`: with its `id` and `seq`) or allowed now.
    public struct Move: Hashable, Sendable, Codable {
        /// The stage left.
        public var from: StageID
        /// The stage entered.
        public var to: StageID
        /// `next` (the stage after), `skip` or `backward` (a declared edge): `EdgeKind`'s raw value.
        public var kind: String
        /// The edge's declared reason, or `graduated to <stage>`.
        public var reason: String
        /// The user's move number once recorded (`journey_transitions.seq`); null when not written
        /// (a dry run, explain, a server's `GET`).
        public var seq: Int?
        /// The recorded row's id (`journey_transitions.id`, the feed's position, an SSE `id:`);
        /// null when not written.
        public var id: Int64?

        enum CodingKeys: String, CodingKey { case from, to, kind, reason, seq, id }

        /// A move as the report lists it (see the properties).
        public init(from: StageID, to: StageID, kind: String, reason: String, seq: Int?, id: Int64?) {
            self.from = from
            self.to = to
            self.kind = kind
            self.reason = reason
            self.seq = seq
            self.id = id
        }

        /// Writes every key, `seq` and `id` as null when the move was not recorded.
        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(from, forKey: .from)
            try container.encode(to, forKey: .to)
            try container.encode(kind, forKey: .kind)
            try container.encode(reason, forKey: .reason)
            try container.encode(seq, forKey: .seq)
            try container.encode(id, forKey: .id)
        }
    }

    /// One metric test of the next stage's checklist; the members of an any-of group share
    /// `criterion` (the line's number, from 1) and `criterion_met` (whether any member holds).
    public struct Check: Hashable, Sendable, Codable {
        /// The metric tested (`posts`).
        public var metric: String
        /// The comparison (`>=`, `==`, `in` …).
        public var `operator`: String
        /// The value compared with, as the rule file writes it.
        public var threshold: String
        /// The user's value as text, `missing` for NULL.
        public var actual: String
        /// Whether this test holds.
        public var met: Bool
        /// The criterion's number in the checklist, from 1.
        public var criterion: Int
        /// Whether the criterion holds (for a group: any member).
        public var criterionMet: Bool
        /// The group's number for a member of an any-of group; null for a plain criterion.
        public var anyOfGroup: Int?

        enum CodingKeys: String, CodingKey {
            case metric, `operator`, threshold, actual, met, criterion, criterionMet = "criterion_met", anyOfGroup = "any_of_group"
        }

        /// The report of `check`, whose criterion (its whole group) holds or not as `criterionMet` says.
        public init(_ check: CriterionCheck, criterionMet: Bool) {
            metric = check.metric.rawValue
            `operator` = check.comparison.rawValue
            threshold = check.threshold
            actual = check.actual
            met = check.met
            criterion = check.number
            self.criterionMet = criterionMet
            anyOfGroup = check.anyOfGroup
        }

        /// Writes every key, `any_of_group` as null for a plain criterion.
        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(metric, forKey: .metric)
            try container.encode(`operator`, forKey: .operator)
            try container.encode(threshold, forKey: .threshold)
            try container.encode(actual, forKey: .actual)
            try container.encode(met, forKey: .met)
            try container.encode(criterion, forKey: .criterion)
            try container.encode(criterionMet, forKey: .criterionMet)
            try container.encode(anyOfGroup, forKey: .anyOfGroup)
        }
    }

    /// The checklist toward the next stage.
    public struct Next: Hashable, Sendable, Codable {
        /// The next stage.
        public var stage: StageID
        /// Its title.
        public var title: String
        /// Whether its requirement holds as a whole.
        public var met: Bool
        /// Criteria that hold, an any-of group counting as one.
        public var criteriaMet: Int
        /// Criteria in all, an any-of group counting as one.
        public var criteriaCount: Int
        /// One entry per metric test, in the rule file's order.
        public var criteria: [Check]

        enum CodingKeys: String, CodingKey {
            case stage, title, met, criteriaMet = "criteria_met", criteriaCount = "criteria_count", criteria
        }

        /// The report of `checklist`, titled from `rules`.
        public init(_ checklist: Checklist, rules: RuleSet) {
            stage = checklist.to
            title = rules.stage(checklist.to)?.title ?? ""
            met = checklist.isMet
            criteriaMet = checklist.criteriaMet
            criteriaCount = checklist.criteriaCount
            criteria = checklist.checks.map { Check($0, criterionMet: checklist.holds(criterion: $0.number)) }
        }
    }

    /// The user's id.
    public var user: Int64
    /// `customer_journey_state` once the answer was given: after a persisted evaluation, the new
    /// stage; otherwise the stage the moves start from, as stored (empty: never evaluated).
    public var storedStage: String
    /// The stage the evaluation ends in.
    public var stage: StageID
    /// That stage's title.
    public var title: String
    /// Whether ``transitions`` were written.
    public var persisted: Bool
    /// The moves, in order: those recorded when ``persisted``, else those the metrics allow now.
    public var transitions: [Move]
    /// The checklist toward the stage after ``stage``; null in the last stage.
    public var next: Next?
    /// The operator's pin; null when the user is not pinned.
    public var pin: PinReport?
    /// Every metric by name (`posts`, `subscription_tier` …), typed; null where the data is NULL.
    public var metrics: [String: ReportValue]
    /// The `version` of the rules that evaluated.
    public var rulesVersion: String
    /// The instant the metrics were evaluated at (ISO-8601 text in JSON).
    public var evaluatedAt: Date

    enum CodingKeys: String, CodingKey {
        case user, storedStage = "stored_stage", stage, title, persisted, transitions, next, pin, metrics
        case rulesVersion = "rules_version", evaluatedAt = "evaluated_at"
    }

    /// The report of `journey`, evaluated by `rules`. A journey from
    /// ``JourneyService/evaluateAndPersist(user:)`` is `persisted` (its moves carry their `seq` and
    /// `id`) unless it recorded nothing; pass `persisted: false` for a dry run whatever it holds.
    public init(_ journey: UserJourney, rules: RuleSet, persisted: Bool) {
        let evaluation = journey.evaluation
        user = journey.userID
        storedStage = journey.storedStage
        stage = evaluation.stage
        title = rules.stage(evaluation.stage)?.title ?? ""
        self.persisted = persisted
        let recorded = journey.recorded
        transitions = evaluation.transitions.enumerated().map { index, move in
            let row = index < recorded.count ? recorded[index] : nil
            return Move(from: move.from, to: move.to, kind: move.kind.rawValue, reason: move.reason, seq: row?.seq, id: row?.id)
        }
        next = evaluation.next.map { Next($0, rules: rules) }
        pin = journey.pin.map(PinReport.init)
        metrics = Dictionary(uniqueKeysWithValues: evaluation.metrics.values(now: evaluation.evaluatedAt).map { ($0.rawValue, ReportValue($1)) })
        rulesVersion = rules.version
        evaluatedAt = evaluation.evaluatedAt
    }

    /// Reads the object; `evaluated_at` is ISO-8601 text, `next` and `pin` may be null.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        user = try container.decode(Int64.self, forKey: .user)
        storedStage = try container.decode(String.self, forKey: .storedStage)
        stage = try container.decode(StageID.self, forKey: .stage)
        title = try container.decode(String.self, forKey: .title)
        persisted = try container.decode(Bool.self, forKey: .persisted)
        transitions = try container.decode([Move].self, forKey: .transitions)
        next = try container.decodeIfPresent(Next.self, forKey: .next)
        pin = try container.decodeIfPresent(PinReport.self, forKey: .pin)
        metrics = try container.decode([String: ReportValue].self, forKey: .metrics)
        rulesVersion = try container.decode(String.self, forKey: .rulesVersion)
        evaluatedAt = try container.decodeTimestamp(forKey: .evaluatedAt)
    }

    /// Writes every key, `next` and `pin` as null when there is none.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(user, forKey: .user)
        try container.encode(storedStage, forKey: .storedStage)
        try container.encode(stage, forKey: .stage)
        try container.encode(title, forKey: .title)
        try container.encode(persisted, forKey: .persisted)
        try container.encode(transitions, forKey: .transitions)
        try container.encode(next, forKey: .next)
        try container.encode(pin, forKey: .pin)
        try container.encode(metrics, forKey: .metrics)
        try container.encode(rulesVersion, forKey: .rulesVersion)
        try container.encodeTimestamp(evaluatedAt, forKey: .evaluatedAt)
    }
}

/// One committed row of `journey_transitions`: the JSON of `journey watch --json`, of the example
/// server's event stream (`data:` of each SSE event) and of its `201` answer to an explicit move.
///
/// ```json
/// {"id": 412, "user_id": 42, "seq": 2, "from_state": "J1_NEW_USER", "to_state": "J2_ACTIVE_USER",
///  "reason": "graduated to J2_ACTIVE_USER", "rules_version": "mundo-tango-1", "source": "batch",
///  "metrics": {"posts": 3, "role": "user", "…": "…"}, "created_at": "2026-11-29T10:02:03Z"}
/// ```
public struct TransitionReport: Hashable, Sendable, Codable {
    /// The row id: the feed's position, to resume after (`--since`, `Last-Event-ID`).
    public var id: Int64
    /// The user who moved.
    public var userID: Int64
    /// The user's move number, from 1.
    public var seq: Int
    /// The stage left.
    public var from: StageID
    /// The stage entered.
    public var to: StageID
    /// Why the user moved.
    public var reason: String
    /// The `version` of the rules that decided the move.
    public var rulesVersion: String
    /// The metrics the move was decided on, typed (an object; empty when the stored text is not one).
    public var metrics: [String: ReportValue]
    /// Who asked: `api`, `cli` or `batch`.
    public var source: TransitionSource
    /// When the move committed (ISO-8601 text in JSON).
    public var createdAt: Date

    enum CodingKeys: String, CodingKey {
        case id, userID = "user_id", seq, from = "from_state", to = "to_state", reason
        case rulesVersion = "rules_version", metrics, source, createdAt = "created_at"
    }

    /// The report of a committed row.
    public init(_ transition: RecordedTransition) {
        id = transition.id
        userID = transition.userID
        seq = transition.seq
        from = transition.from
        to = transition.to
        reason = transition.reason
        rulesVersion = transition.rulesVersion
        metrics = ReportValue.metrics(json: transition.metrics)
        source = transition.source
        createdAt = transition.createdAt
    }

    /// Reads the object; `created_at` is ISO-8601 text.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        id = try container.decode(Int64.self, forKey: .id)
        userID = try container.decode(Int64.self, forKey: .userID)
        seq = try container.decode(Int.self, forKey: .seq)
        from = try container.decode(StageID.self, forKey: .from)
        to = try container.decode(StageID.self, forKey: .to)
        reason = try container.decode(String.self, forKey: .reason)
        rulesVersion = try container.decode(String.self, forKey: .rulesVersion)
        metrics = try container.decode([String: ReportValue].self, forKey: .metrics)
        source = try container.decode(TransitionSource.self, forKey: .source)
        createdAt = try container.decodeTimestamp(forKey: .createdAt)
    }

    /// Writes the object; `created_at` as ISO-8601 text.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(id, forKey: .id)
        try container.encode(userID, forKey: .userID)
        try container.encode(seq, forKey: .seq)
        try container.encode(from, forKey: .from)
        try container.encode(to, forKey: .to)
        try container.encode(reason, forKey: .reason)
        try container.encode(rulesVersion, forKey: .rulesVersion)
        try container.encode(metrics, forKey: .metrics)
        try container.encode(source, forKey: .source)
        try container.encodeTimestamp(createdAt, forKey: .createdAt)
    }
}

/// A user's stays, stage by stage: the JSON of `journey history --json`.
///
/// `{"user", "stage", "pin", "stays": [{"stage", "entered_at", "left_at", "seconds", "seq", "reason", "source", "rules_version"}]}`:
/// the first stay starts at signup and has no `seq`; the last has `left_at: null` and lasts until the report.
public struct UserHistory: Hashable, Sendable, Codable {
    /// One stage the user was in: when it began (signup for the first) and how long it lasted.
    public struct Stay: Hashable, Sendable, Codable {
        /// The stage, as stored (the first may be empty: never evaluated, or a legacy value).
        public var stage: String
        /// When the user entered it: the move's `created_at`, or signup for the first; null when unknown.
        public var enteredAt: Date?
        /// When the next move left it; null for the current stage.
        public var leftAt: Date?
        /// Seconds from ``enteredAt`` to ``leftAt`` (or to the report's instant); null when either is unknown.
        public var seconds: Double?
        /// The move that entered it; null for the first stay.
        public var seq: Int?
        /// That move's reason.
        public var reason: String?
        /// Who asked for that move (`api`, `cli`, `batch`).
        public var source: String?
        /// The rules version that decided that move.
        public var rulesVersion: String?

        enum CodingKeys: String, CodingKey {
            case stage, enteredAt = "entered_at", leftAt = "left_at", seconds, seq, reason, source, rulesVersion = "rules_version"
        }

        /// A stay as the report lists it (see the properties).
        public init(
            stage: String, enteredAt: Date?, leftAt: Date?, seconds: Double?, seq: Int?, reason: String?,
            source: String?, rulesVersion: String?
        ) {
            self.stage = stage
            self.enteredAt = enteredAt
            self.leftAt = leftAt
            self.seconds = seconds
            self.seq = seq
            self.reason = reason
            self.source = source
            self.rulesVersion = rulesVersion
        }

        /// Reads the object; instants are ISO-8601 text or null.
        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            stage = try container.decode(String.self, forKey: .stage)
            enteredAt = try container.decodeTimestampIfPresent(forKey: .enteredAt)
            leftAt = try container.decodeTimestampIfPresent(forKey: .leftAt)
            seconds = try container.decodeIfPresent(Double.self, forKey: .seconds)
            seq = try container.decodeIfPresent(Int.self, forKey: .seq)
            reason = try container.decodeIfPresent(String.self, forKey: .reason)
            source = try container.decodeIfPresent(String.self, forKey: .source)
            rulesVersion = try container.decodeIfPresent(String.self, forKey: .rulesVersion)
        }

        /// Writes every key, null where it does not apply.
        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(stage, forKey: .stage)
            try container.encodeTimestamp(enteredAt, forKey: .enteredAt)
            try container.encodeTimestamp(leftAt, forKey: .leftAt)
            try container.encode(seconds, forKey: .seconds)
            try container.encode(seq, forKey: .seq)
            try container.encode(reason, forKey: .reason)
            try container.encode(source, forKey: .source)
            try container.encode(rulesVersion, forKey: .rulesVersion)
        }
    }

    /// The user's id.
    public var user: Int64
    /// The stored stage now (empty: never evaluated).
    public var stage: String
    /// The operator's pin; null when there is none.
    public var pin: PinReport?
    /// The stays, oldest first; the last is the current stage.
    public var stays: [Stay]
    /// How many moves are recorded (the stays after the first).
    public var moves: Int { stays.count - 1 }

    enum CodingKeys: String, CodingKey { case user, stage, pin, stays }

    /// The history of a user whose row reads `snapshot`, from their recorded `moves` (oldest first), as of `now`.
    public init(snapshot: UserSnapshot, moves: [RecordedTransition], now: Date) {
        func stay(_ stage: String, _ entered: Date?, _ left: Date?, _ entry: RecordedTransition?) -> Stay {
            let end = left ?? now
            return Stay(
                stage: stage, enteredAt: entered, leftAt: left, seconds: entered.map { end.timeIntervalSince($0) },
                seq: entry?.seq, reason: entry?.reason, source: entry?.source.rawValue, rulesVersion: entry?.rulesVersion)
        }
        var stays: [Stay] = []
        var enteredAt = snapshot.metrics.signedUpAt
        var stage = moves.first?.from.rawValue ?? snapshot.storedStage
        var entry: RecordedTransition?
        for move in moves {
            stays.append(stay(stage, enteredAt, move.createdAt, entry))
            (stage, enteredAt, entry) = (move.to.rawValue, move.createdAt, move)
        }
        stays.append(stay(stage, enteredAt, nil, entry))
        user = snapshot.userID
        self.stage = snapshot.storedStage
        pin = snapshot.pin.map(PinReport.init)
        self.stays = stays
    }

    /// Reads the object; `pin` may be null.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        user = try container.decode(Int64.self, forKey: .user)
        stage = try container.decode(String.self, forKey: .stage)
        pin = try container.decodeIfPresent(PinReport.self, forKey: .pin)
        stays = try container.decode([Stay].self, forKey: .stays)
    }

    /// Writes every key, `pin` as null for a user who is not pinned.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(user, forKey: .user)
        try container.encode(stage, forKey: .stage)
        try container.encode(pin, forKey: .pin)
        try container.encode(stays, forKey: .stays)
    }
}

/// One line of the funnel: a stored stage value and its users. `{"stage", "users", "known"}`.
public struct FunnelRow: Hashable, Sendable, Codable {
    /// The stored value (empty: never evaluated).
    public var stage: String
    /// Users holding it.
    public var users: Int
    /// Whether the rules know the value (a stage or an alias).
    public var known: Bool

    /// A row as the funnel lists it.
    public init(stage: String, users: Int, known: Bool) {
        self.stage = stage
        self.users = users
        self.known = known
    }

    /// The funnel in `rules`' order: every stage of the rules (0 where no user is), aliases just
    /// after their stage, then stored values the rules do not know.
    public static func rows(_ counts: [(stage: String, count: Int)], rules: RuleSet) -> [FunnelRow] {
        var users = Dictionary(counts.map { ($0.stage, $0.count) }, uniquingKeysWith: +)
        for stage in rules.stages where users[stage.id.rawValue] == nil { users[stage.id.rawValue] = 0 }
        return users.keys.sorted { rules.order(of: $0) < rules.order(of: $1) }
            .map { FunnelRow(stage: $0, users: users[$0] ?? 0, known: rules.knows(stored: $0)) }
    }
}

extension KeyedEncodingContainer {
    /// Writes `date` as ISO-8601 text (``JourneyTimestamp/iso8601(_:)``), or null.
    mutating func encodeTimestamp(_ date: Date?, forKey key: Key) throws {
        try encode(date.map(JourneyTimestamp.iso8601), forKey: key)
    }
}

extension KeyedDecodingContainer {
    /// Reads an ISO-8601 text as an instant.
    func decodeTimestamp(forKey key: Key) throws -> Date {
        guard let date = try decodeTimestampIfPresent(forKey: key) else {
            throw DecodingError.valueNotFound(Date.self, .init(codingPath: codingPath + [key], debugDescription: "a timestamp is required"))
        }
        return date
    }

    /// Reads an ISO-8601 text as an instant; nil for null or an absent key.
    func decodeTimestampIfPresent(forKey key: Key) throws -> Date? {
        guard let text = try decodeIfPresent(String.self, forKey: key) else { return nil }
        guard let date = JourneyTimestamp.date(text) else {
            throw DecodingError.dataCorruptedError(forKey: key, in: self, debugDescription: "'\(text)' is not an ISO-8601 timestamp")
        }
        return date
    }
}

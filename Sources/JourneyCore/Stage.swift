/// The id of a journey stage, such as `J2_ACTIVE_USER`.
///
/// The `J<n>_` prefix is the stage's position in its rule set; the loader checks it.
public struct StageID: RawRepresentable, Hashable, Comparable, Sendable, Codable, CustomStringConvertible, ExpressibleByStringLiteral {
    /// The id as stored in `users.customer_journey_state`, such as `J2_ACTIVE_USER`.
    public let rawValue: String

    /// The id `rawValue`, unchecked (any string; the loader checks ids of a rule set).
    public init(rawValue: String) { self.rawValue = rawValue }
    /// The id `rawValue`, unchecked; the same as ``init(rawValue:)`` without the label.
    public init(_ rawValue: String) { self.rawValue = rawValue }
    /// The id written as a literal, as in `let target: StageID = "J3_POWER_USER"`; unchecked.
    public init(stringLiteral value: String) { self.rawValue = value }

    /// The raw id, such as `J2_ACTIVE_USER`.
    public var description: String { rawValue }

    /// The `n` of the `J<n>_` prefix, when the id has one.
    public var number: Int? {
        guard rawValue.first == "J", let underscore = rawValue.firstIndex(of: "_") else { return nil }
        return Int(rawValue[rawValue.index(after: rawValue.startIndex)..<underscore])
    }

    /// Journey order: by the `J<n>_` number (so J10 follows J9), then by text.
    public static func < (lhs: StageID, rhs: StageID) -> Bool {
        switch (lhs.number, rhs.number) {
        case let (left?, right?) where left != right: left < right
        default: lhs.rawValue < rhs.rawValue
        }
    }

    public init(from decoder: any Decoder) throws {
        rawValue = try decoder.singleValueContainer().decode(String.self)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }
}

/// One stage of the journey, with what must hold for a user to enter it.
public struct Stage: Hashable, Sendable {
    /// The stage's id, whose `J<n>_` prefix gives its place: n = ``position`` + 1 (SPEC §1).
    public let id: StageID
    /// Zero-based position in the rule set (`J1_` is 0).
    public let position: Int
    /// The stage's `title` in the rules file, a short name for people (`Active User`).
    public let title: String
    /// The stage's `description` in the rules file; empty when the file gives none.
    public let summary: String
    /// What must hold for a user to enter this stage from the stage before it.
    public let graduation: Requirement
    /// Whether the implicit edge from the previous stage exists (`enter_from_previous`).
    public let entersFromPrevious: Bool

    /// A stage as the loader builds it; `position` is zero-based and should agree with the id's `J<n>_`.
    public init(id: StageID, position: Int, title: String, summary: String, graduation: Requirement, entersFromPrevious: Bool = true) {
        self.id = id
        self.position = position
        self.title = title
        self.summary = summary
        self.graduation = graduation
        self.entersFromPrevious = entersFromPrevious
    }
}

/// How an edge relates the positions of its two stages.
public enum EdgeKind: String, Hashable, Sendable, Codable {
    /// From a stage to the one right after it: the default way forward.
    case next
    /// Forward past at least one stage; only by explicit declaration.
    case skip
    /// To an earlier stage; only by explicit declaration.
    case backward
}

/// A move the rules allow, with the requirement that must hold to take it.
public struct Edge: Hashable, Sendable {
    /// The stage the edge leaves; an edge declared `from: any` is one `Edge` per origin stage.
    public let from: StageID
    /// The stage the edge enters.
    public let to: StageID
    /// How the edge relates the two positions, computed from them (SPEC §1: skip and backward only when declared).
    public let kind: EdgeKind
    /// Why a user takes the edge, recorded on the transition: the declared `reason`, or
    /// `graduated to <stage>` for an implicit edge or a declared one without a reason.
    public let reason: String
    /// What must hold to take the edge: the edge's own `criteria`, else the target stage's graduation.
    public let requirement: Requirement
    /// Whether the edge was declared under `edges:` (declared edges win over `next`).
    public let isDeclared: Bool

    /// An edge as the loader builds it; the initializer does not check that `kind` agrees with the stages' positions.
    public init(from: StageID, to: StageID, kind: EdgeKind, reason: String, requirement: Requirement, isDeclared: Bool) {
        self.from = from
        self.to = to
        self.kind = kind
        self.reason = reason
        self.requirement = requirement
        self.isDeclared = isDeclared
    }
}

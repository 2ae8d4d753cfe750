/// The id of a journey stage, such as `J2_ACTIVE_USER`.
///
/// The `J<n>_` prefix is the stage's position in its rule set; the loader checks it.
public struct StageID: RawRepresentable, Hashable, Comparable, Sendable, Codable, CustomStringConvertible, ExpressibleByStringLiteral {
    public let rawValue: String

    public init(rawValue: String) { self.rawValue = rawValue }
    public init(_ rawValue: String) { self.rawValue = rawValue }
    public init(stringLiteral value: String) { self.rawValue = value }

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
    public let id: StageID
    /// Zero-based position in the rule set (`J1_` is 0).
    public let position: Int
    public let title: String
    public let summary: String
    /// What must hold for a user to enter this stage from the stage before it.
    public let graduation: Requirement
    /// Whether the implicit edge from the previous stage exists (`enter_from_previous`).
    public let entersFromPrevious: Bool

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
    public let from: StageID
    public let to: StageID
    public let kind: EdgeKind
    public let reason: String
    public let requirement: Requirement
    /// Whether the edge was declared under `edges:` (declared edges win over `next`).
    public let isDeclared: Bool

    public init(from: StageID, to: StageID, kind: EdgeKind, reason: String, requirement: Requirement, isDeclared: Bool) {
        self.from = from
        self.to = to
        self.kind = kind
        self.reason = reason
        self.requirement = requirement
        self.isDeclared = isDeclared
    }
}

import JourneyCore
import JourneySQLite

/// Everything the service refuses or fails at, as one sentence naming the user, stage or file.
public enum JourneyError: Error, Sendable, CustomStringConvertible {
    /// The rule set is malformed (the message names the file and the place).
    case rules(JourneyCoreError)
    /// A rules file that cannot be read at all.
    case rulesUnreadable(path: String, reason: String)
    /// The database refused or failed (missing file, not SQLite, unknown user, …).
    case store(StoreError)
    /// The rules refuse something about this user: an unknown stored stage, a skip, unmet criteria.
    case refused(user: Int64, JourneyCoreError)
    /// An explicit move was asked for a user an operator pinned.
    case pinned(user: Int64, stage: String, reason: String)

    /// One sentence for an operator: the store's or the rules' message, prefixed with the user when
    /// there is one, or the `journey unpin` command for a pinned user.
    public var description: String {
        switch self {
        case .rules(let error): error.description
        case let .rulesUnreadable(path, reason): "Cannot read the rules file \(path): \(reason)."
        case .store(let error): error.description
        case let .refused(user, error): "User \(user): \(error.description)"
        case let .pinned(user, stage, reason):
            "User \(user) is pinned in \(stage) (\(reason)); run journey unpin \(user) before moving them."
        }
    }
}

import Foundation

/// Where a PostgreSQL database is, parsed from `postgresql://user[:password]@host[:port]/database`.
///
/// `postgres://` is accepted too. The user and the password may be percent-encoded; the port
/// defaults to 5432. One query parameter is understood, `sslmode` (`disable`, `prefer`, `require`,
/// `verify-full`; default `prefer`, as libpq). Every other part of a URL (a path below the database name, a
/// fragment, another parameter) is refused rather than ignored.
///
/// ```swift
/// let location = try PostgresLocation(url: "postgresql://journey@db.internal:5432/platform")
/// ```
public struct PostgresLocation: Hashable, Sendable, CustomStringConvertible {
    /// How the connection uses TLS (`sslmode` in the URL).
    public enum TLSMode: String, Sendable, Hashable {
        /// Never TLS.
        case disable
        /// TLS when the server offers it, plain otherwise.
        case prefer
        /// TLS or no connection; the certificate is not verified (as libpq's `require`).
        case require
        /// TLS with a certificate verified against the system's roots and the host name.
        case verifyFull = "verify-full"
    }

    /// The host name or IP address.
    public var host: String
    /// The TCP port; 5432 unless the URL names one.
    public var port: Int
    /// The role to connect as.
    public var user: String
    /// The password, when the URL has one.
    public var password: String?
    /// The database name.
    public var database: String
    /// The TLS mode; ``TLSMode/prefer`` unless the URL says otherwise.
    public var tls: TLSMode

    /// Creates a location from its parts.
    public init(host: String, port: Int = 5432, user: String, password: String? = nil, database: String, tls: TLSMode = .prefer) {
        self.host = host
        self.port = port
        self.user = user
        self.password = password
        self.database = database
        self.tls = tls
    }

    /// Whether `text` asks for PostgreSQL (`postgresql://` or `postgres://`), as `--db` decides.
    public static func isPostgresURL(_ text: String) -> Bool {
        text.hasPrefix("postgresql://") || text.hasPrefix("postgres://")
    }

    /// Parses `postgresql://user[:password]@host[:port]/database[?sslmode=…]`.
    ///
    /// - throws: ``PostgresURLError`` naming the part that is wrong.
    public init(url text: String) throws(PostgresURLError) {
        func fail(_ reason: String) -> PostgresURLError { PostgresURLError(url: text, reason: reason) }
        guard Self.isPostgresURL(text) else { throw fail("it must start with postgresql://") }
        guard let components = URLComponents(string: text) else { throw fail("it is not a valid URL") }
        guard let host = components.host, !host.isEmpty else { throw fail("no host") }
        guard let user = components.user, !user.isEmpty else { throw fail("no user before @") }
        if let port = components.port, !(1...65_535).contains(port) { throw fail("port \(port) is out of range") }
        let path = components.path
        guard path.hasPrefix("/"), path.count > 1 else { throw fail("no database name after the host") }
        let database = String(path.dropFirst())
        guard !database.contains("/") else { throw fail("the database name contains /") }
        guard components.fragment == nil else { throw fail("a fragment (#…) is not allowed") }
        var tls = TLSMode.prefer
        for item in components.queryItems ?? [] {
            guard item.name == "sslmode" else { throw fail("unknown parameter \(item.name)") }
            guard let mode = item.value.flatMap(TLSMode.init(rawValue:)) else {
                throw fail("sslmode must be disable, prefer, require or verify-full")
            }
            tls = mode
        }
        self.init(
            host: host.hasPrefix("[") ? String(host.dropFirst().dropLast()) : host,
            port: components.port ?? 5432,
            user: user.removingPercentEncoding ?? user,
            password: components.password.map { $0.removingPercentEncoding ?? $0 },
            database: database.removingPercentEncoding ?? database,
            tls: tls)
    }
}

extension PostgresLocation {
    /// The URL without its password, for messages and ``PostgresStore/location``:
    /// `postgresql://journey@db.internal:5432/platform` (`?sslmode=…` when it is not `prefer`).
    public var description: String {
        let shownUser = user.addingPercentEncoding(withAllowedCharacters: .urlUserAllowed) ?? user
        let shownHost = host.contains(":") ? "[\(host)]" : host
        let shownDatabase = database.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) ?? database
        let query = tls == .prefer ? "" : "?sslmode=\(tls.rawValue)"
        return "postgresql://\(shownUser)@\(shownHost):\(port)/\(shownDatabase)\(query)"
    }
}

/// A `--db` value that is not a PostgreSQL URL: what ``PostgresLocation/init(url:)`` throws, before
/// any server is asked (a front end answers it as a usage error).
public struct PostgresURLError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The URL as given, its password replaced by `***`.
    public let url: String
    /// Which part is wrong: `no host`, `port 99999 is out of range`, …
    public let reason: String

    /// The error for `url` (whose password is hidden here) and `reason`.
    public init(url: String, reason: String) {
        self.url = Self.redacted(url)
        self.reason = reason
    }

    /// One sentence naming the URL (without its password) and the part that is wrong.
    public var description: String {
        "\(url) is not a PostgreSQL URL (\(reason)); expected postgresql://user[:password]@host[:port]/database."
    }

    /// `url` with its password replaced by `***`.
    static func redacted(_ url: String) -> String {
        guard let scheme = url.range(of: "://"), let at = url[scheme.upperBound...].lastIndex(of: "@") else { return url }
        let credentials = url[scheme.upperBound..<at]
        guard let colon = credentials.firstIndex(of: ":") else { return url }
        return String(url[..<colon]) + ":***" + String(url[at...])
    }
}

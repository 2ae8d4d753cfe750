import Hummingbird
import Journey

/// Turns the service's typed refusals into status codes and a JSON body `{"error": "..."}`,
/// with the stages skipped (409) or the criteria unmet (422) alongside.
///
/// The messages are the service's: they say what is wrong and give no command-line advice. A
/// store failure is answered by its coarse ``StorageError/Category``, never by its case.
struct JourneyErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as JourneyError {
            let body = ErrorJSON(error)
            if body.status.code >= 500 {
                context.logger.error("journey request failed", metadata: ["error": "\(error)"])
            }
            return try body.response(from: request, context: context)
        } catch let error as HTTPError {
            // Hummingbird's own refusals (bad id, bad body, no route), in the same shape.
            return try ErrorJSON(status: error.status, message: error.body ?? error.status.reasonPhrase)
                .response(from: request, context: context)
        }
    }
}

/// The body of every error answer.
struct ErrorJSON: Encodable {
    let status: HTTPResponse.Status
    let error: String
    /// The stages a refused skip would have jumped (409).
    var skipped: [StageID]?
    /// The criteria that do not hold, as the evaluation report lists them (422).
    var unmet: [EvaluationReport.Check]?
    /// The stage a pinned user is held in (409).
    var pin: String?

    enum CodingKeys: String, CodingKey { case error, skipped, unmet, pin }

    init(status: HTTPResponse.Status, message: String) {
        self.status = status
        self.error = message
    }

    init(_ error: JourneyError) {
        switch error {
        case .store(let store):
            self.init(status: Self.status(for: store.category), message: error.description)
        case .refused(_, .skipNotDeclared(_, _, let skipped)):
            self.init(status: .conflict, message: error.description)
            self.skipped = skipped
        case .refused(_, .criteriaNotMet(_, _, let unmet)):
            self.init(status: .unprocessableContent, message: error.description)
            // Unmet checks never belong to a group that holds, so no criterion of theirs is met.
            self.unmet = unmet.map { EvaluationReport.Check($0, criterionMet: false) }
        case .refused(_, .backwardNotDeclared), .refused(_, .noEdge):
            self.init(status: .conflict, message: error.description)
        case .refused(_, .unknownTargetStage):
            self.init(status: .badRequest, message: error.description)
        case .refused(_, .unknownStage):
            self.init(status: .unprocessableContent, message: error.description)
        case .pinned(_, let stage, _):
            self.init(status: .conflict, message: error.description)
            self.pin = stage
        case .rules:
            self.init(status: .internalServerError, message: error.description)
        case .stopped:
            // A batch the host stopped (on shutdown): the server is going away; try again elsewhere.
            self.init(status: .serviceUnavailable, message: error.description)
        }
    }

    /// The HTTP answer to each kind of store failure: an unknown user is the client's 404; a busy
    /// database a 503 to retry; a write the platform's constraints refused a 409; the rest the
    /// server's fault.
    static func status(for category: StorageError.Category) -> HTTPResponse.Status {
        switch category {
        case .notFound: .notFound
        case .busy: .serviceUnavailable
        case .refused: .conflict
        case .invalidDatabase, .permission, .failure: .internalServerError
        }
    }

    func response(from request: Request, context: some RequestContext) throws -> Response {
        var response = try context.responseEncoder.encode(self, from: request, context: context)
        response.status = status
        if status == .serviceUnavailable { response.headers[.retryAfter] = "1" }
        return response
    }
}

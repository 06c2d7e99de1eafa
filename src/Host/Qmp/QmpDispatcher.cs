using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging;
using MiniVmm.Host.Qmp.Protocol;
using MiniVmm.Runstate;

namespace MiniVmm.Host.Qmp;

/// <summary>
/// Turns one client message into one reply, as QEMU's QMP dispatcher does: checks the request's
/// shape, enforces capabilities negotiation, checks the arguments and runs the command with the
/// VM's big lock held. Never throws for anything a client sends.
/// </summary>
public sealed partial class QmpDispatcher(VirtualMachine vm, QmpCommandRegistry commands, ILogger<QmpDispatcher> logger)
{
    private const string CapabilitiesCommand = "qmp_capabilities";

    /// <summary>Every registered command.</summary>
    public QmpCommandRegistry Commands { get; } = commands;

    /// <summary>
    /// Answers <paramref name="input"/> for the client whose state is <paramref name="session"/>.
    /// The returned actions must run after the reply has been queued.
    /// </summary>
    public QmpDispatchResult Dispatch(QmpInput input, QmpSession session)
    {
        if (input.IsParseError)
        {
            return QmpDispatchResult.Of(QmpMessages.Error(QmpErrorClass.GenericError, input.ParseError!));
        }

        if (input.Value is not JsonObject request)
        {
            return QmpDispatchResult.Of(QmpMessages.Error(QmpErrorClass.GenericError, "QMP input must be a JSON object"));
        }

        request.TryGetPropertyValue("id", out JsonNode? id);
        try
        {
            (string name, JsonObject arguments) = ReadRequest(request);
            IQmpCommand command = FindCommand(name, session);
            QmpArgumentChecker.Check(command.Parameters, arguments);
            var context = new QmpContext(vm, session, Commands);
            JsonNode? result = Execute(command, arguments, context);
            return new QmpDispatchResult(QmpMessages.Return(result, id), context.AfterReply);
        }
        catch (QmpException error)
        {
            return QmpDispatchResult.Of(QmpMessages.Error(error.ErrorClass, error.Message, id));
        }
    }

    private static (string Name, JsonObject Arguments) ReadRequest(JsonObject request)
    {
        string? name = null;
        JsonObject? arguments = null;
        foreach (KeyValuePair<string, JsonNode?> member in request)
        {
            switch (member.Key)
            {
                case "execute":
                    name = member.Value?.GetValueKind() == JsonValueKind.String
                        ? member.Value.GetValue<string>()
                        : throw new QmpException("QMP input member 'execute' must be a string");
                    break;
                case "exec-oob":
                    throw new QmpException("QMP input member 'exec-oob' is not supported: out-of-band execution was not negotiated");
                case "arguments":
                    arguments = member.Value as JsonObject
                        ?? throw new QmpException("QMP input member 'arguments' must be an object");
                    break;
                case "id":
                    break;
                default:
                    throw new QmpException($"QMP input member '{member.Key}' is unexpected");
            }
        }

        if (name is null)
        {
            throw new QmpException("QMP input lacks member 'execute'");
        }

        return (name, arguments ?? []);
    }

    private IQmpCommand FindCommand(string name, QmpSession session)
    {
        if (!session.IsNegotiated && name != CapabilitiesCommand)
        {
            throw new QmpException(QmpErrorClass.CommandNotFound, "Expecting capabilities negotiation with 'qmp_capabilities'");
        }

        return Commands.TryGet(name, out IQmpCommand? command)
            ? command
            : throw new QmpException(QmpErrorClass.CommandNotFound, $"The command {name} has not been found");
    }

    private JsonNode? Execute(IQmpCommand command, JsonObject arguments, QmpContext context)
    {
        using BigLock.Scope? held = command.RequiresBigLock ? vm.Bql.Acquire() : null;
        try
        {
            return command.Execute(arguments, context);
        }
        catch (QmpException)
        {
            throw;
        }
        catch (Exception error)
        {
            LogCommandFailed(error, command.Name);
            throw new QmpException(QmpErrorClass.GenericError, error.Message, error);
        }
    }

    [LoggerMessage(EventId = 3220, Level = LogLevel.Warning, Message = "QMP command {Command} failed unexpectedly")]
    private partial void LogCommandFailed(Exception error, string command);
}

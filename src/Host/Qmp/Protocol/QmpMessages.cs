using System.Text.Json.Nodes;
using MiniVmm.Runstate;

namespace MiniVmm.Host.Qmp.Protocol;

/// <summary>The shapes of the messages a QMP server sends: greeting, replies, errors, events.</summary>
public static class QmpMessages
{
    /// <summary>The <c>qemu</c> member of the greeting and of <c>query-version</c>.</summary>
    public static JsonObject Version() => new()
    {
        ["qemu"] = new JsonObject
        {
            ["major"] = QemuCompatibility.Major,
            ["minor"] = QemuCompatibility.Minor,
            ["micro"] = QemuCompatibility.Micro,
        },
        ["package"] = QemuCompatibility.Package,
    };

    /// <summary>The greeting sent on connect; no optional capability is offered.</summary>
    public static JsonObject Greeting() => new()
    {
        ["QMP"] = new JsonObject
        {
            ["version"] = Version(),
            ["capabilities"] = new JsonArray(),
        },
    };

    /// <summary>A success reply; an absent result becomes an empty object.</summary>
    public static JsonObject Return(JsonNode? result, JsonNode? id)
    {
        var reply = new JsonObject { ["return"] = result ?? new JsonObject() };
        AddId(reply, id);
        return reply;
    }

    /// <summary>An error reply.</summary>
    public static JsonObject Error(QmpErrorClass errorClass, string description, JsonNode? id = null)
    {
        var reply = new JsonObject
        {
            ["error"] = new JsonObject
            {
                ["class"] = errorClass.ToWireName(),
                ["desc"] = description,
            },
        };
        AddId(reply, id);
        return reply;
    }

    /// <summary>An asynchronous event; <c>data</c> is left out when the event has none.</summary>
    public static JsonObject Event(VmEvent vmEvent)
    {
        long microsecondsSinceEpoch = (vmEvent.Timestamp.UtcTicks - DateTimeOffset.UnixEpoch.UtcTicks) / TimeSpan.TicksPerMicrosecond;
        var message = new JsonObject
        {
            ["timestamp"] = new JsonObject
            {
                ["seconds"] = microsecondsSinceEpoch / 1_000_000,
                ["microseconds"] = microsecondsSinceEpoch % 1_000_000,
            },
            ["event"] = vmEvent.Name,
        };
        if (vmEvent.Data is not null)
        {
            message["data"] = vmEvent.Data.DeepClone();
        }

        return message;
    }

    private static void AddId(JsonObject reply, JsonNode? id)
    {
        if (id is not null)
        {
            reply["id"] = id.DeepClone();
        }
    }
}

// Applies a topic and ACL plan (written by `concord topics plan` from
// config/topics.toml and the agency directory) through Kafka's own Admin client.
// Run with the broker's jars on the class path: java -cp 'libs/*' KafkaSetup.java BOOTSTRAP PLAN
// Idempotent: existing topics are left as they are, ACL creation is idempotent in Kafka.
//
// Plan lines:
//   topic NAME PARTITIONS REPLICATION [config=value ...]
//   acl PRINCIPAL TOPIC|GROUP|TRANSACTIONAL_ID LITERAL|PREFIXED NAME OPERATION
//   sync PRINCIPAL   (every ACL of PRINCIPAL that no acl line lists is deleted:
//                     `concord directory acls` names every agency a directory
//                     version ever listed, so an offboarded one loses access)
import java.nio.file.*;
import java.util.*;
import java.util.concurrent.ExecutionException;
import org.apache.kafka.clients.admin.*;
import org.apache.kafka.common.KafkaFuture;
import org.apache.kafka.common.acl.*;
import org.apache.kafka.common.errors.TopicExistsException;
import org.apache.kafka.common.resource.*;

public class KafkaSetup {
    public static void main(String[] args) throws Exception {
        if (args.length != 2) {
            System.err.println("usage: KafkaSetup BOOTSTRAP PLAN");
            System.exit(2);
        }
        List<NewTopic> topics = new ArrayList<>();
        List<AclBinding> acls = new ArrayList<>();
        Set<String> synced = new TreeSet<>();
        int lineNo = 0;
        for (String line : Files.readAllLines(Path.of(args[1]))) {
            lineNo++;
            line = line.strip();
            if (line.isEmpty() || line.startsWith("#")) continue;
            String[] f = line.split("\\s+");
            switch (f[0]) {
                case "topic" -> {
                    NewTopic t = new NewTopic(f[1], Integer.parseInt(f[2]), Short.parseShort(f[3]));
                    Map<String, String> configs = new HashMap<>();
                    for (int i = 4; i < f.length; i++) {
                        String[] kv = f[i].split("=", 2);
                        configs.put(kv[0], kv[1]);
                    }
                    topics.add(t.configs(configs));
                }
                case "acl" -> acls.add(new AclBinding(
                        new ResourcePattern(ResourceType.valueOf(f[2]), f[4], PatternType.valueOf(f[3])),
                        new AccessControlEntry(f[1], "*", AclOperation.valueOf(f[5]), AclPermissionType.ALLOW)));
                case "sync" -> synced.add(f[1]);
                default -> throw new IllegalArgumentException(args[1] + ":" + lineNo + ": unknown plan line '" + f[0] + "'");
            }
        }
        Properties props = new Properties();
        props.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, args[0]);
        props.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "60000");
        try (Admin admin = Admin.create(props)) {
            int created = 0;
            for (Map.Entry<String, KafkaFuture<Void>> e : admin.createTopics(topics).values().entrySet()) {
                try {
                    e.getValue().get();
                    created++;
                } catch (ExecutionException ex) {
                    if (!(ex.getCause() instanceof TopicExistsException)) throw ex;
                }
            }
            admin.createAcls(acls).all().get();
            List<AclBindingFilter> extra = new ArrayList<>();
            if (!synced.isEmpty()) {
                Set<AclBinding> wanted = new HashSet<>(acls);
                for (AclBinding b : admin.describeAcls(AclBindingFilter.ANY).values().get()) {
                    if (synced.contains(b.entry().principal()) && !wanted.contains(b)) extra.add(b.toFilter());
                }
                if (!extra.isEmpty()) admin.deleteAcls(extra).all().get();
            }
            waitForEveryNode(admin);
            System.out.printf("stack: %d topics in plan (%d created), %d ACLs applied, %d removed%n",
                    topics.size(), created, acls.size(), extra.size());
        }
    }

    // The controller has committed the topics and ACLs; a broker applies them
    // once its copy of the metadata log has them. Until then its authorizer
    // refuses the agencies (a client that starts at once gets a fatal
    // ClusterAuthorizationFailed): wait until every node's log has reached the
    // leader's end, then a moment for it to be applied.
    static void waitForEveryNode(Admin admin) throws Exception {
        QuorumInfo quorum = admin.describeMetadataQuorum().quorumInfo().get();
        long target = quorum.voters().stream().filter(r -> r.replicaId() == quorum.leaderId())
                .mapToLong(QuorumInfo.ReplicaState::logEndOffset).max().orElse(0);
        long deadline = System.currentTimeMillis() + 60_000;
        while (true) {
            QuorumInfo now = admin.describeMetadataQuorum().quorumInfo().get();
            List<QuorumInfo.ReplicaState> replicas = new ArrayList<>(now.voters());
            replicas.addAll(now.observers());
            if (replicas.stream().allMatch(r -> r.logEndOffset() >= target)) break;
            if (System.currentTimeMillis() > deadline) {
                throw new IllegalStateException("the metadata did not reach every node within 60 s: " + replicas);
            }
            Thread.sleep(200);
        }
        Thread.sleep(1_000);
    }
}

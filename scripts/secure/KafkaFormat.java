// Formats a Kafka node's storage with the SCRAM credentials of secure mode. Run by
// `scripts/services` as `java -cp KAFKA_LIB/* KafkaFormat.java -t CLUSTER_ID -c CONFIG` (the
// arguments of StorageTool's format, to which it adds the logins): the passwords
// come from the environment (KAFKA_PASSWORD, KAFKA_BROKER_PASSWORD), so they never appear on a
// command line that other users of the machine can read.
public class KafkaFormat {
    public static void main(String[] args) throws Exception {
        String mechanism = "SCRAM-SHA-256";
        String client = System.getenv("KAFKA_USERNAME");
        java.util.List<String> format = new java.util.ArrayList<>(java.util.List.of("format"));
        format.addAll(java.util.List.of(args));
        format.addAll(java.util.List.of(
            "--add-scram", mechanism + "=[name=" + client + ",password=" + System.getenv("KAFKA_PASSWORD") + "]",
            "--add-scram", mechanism + "=[name=broker,password=" + System.getenv("KAFKA_BROKER_PASSWORD") + "]"));
        kafka.tools.StorageTool.main(format.toArray(new String[0]));
    }
}

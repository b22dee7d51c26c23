/** The range a temperature may take anywhere in the API (readings, alert thresholds, filters). */
export const MIN_TEMPERATURE_CELSIUS = -273.15;
export const MAX_TEMPERATURE_CELSIUS = 1000;
